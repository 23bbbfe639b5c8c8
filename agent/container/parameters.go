package container

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Parameter is one of Marathon's container.docker.parameters: a docker
// run flag without its dashes ({"key": "cap-add", "value": "NET_ADMIN"}).
type Parameter struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// SupportedParameters are the docker run flags that map onto the OCI
// spec. Any other (privileged, net, volume, device, ...) is refused with
// its name: the master can answer 422 with this list, the agent fails the
// task rather than run it differently from what was asked.
var SupportedParameters = []string{
	"cap-add", "cap-drop", "env", "e", "hostname", "h", "label", "l", "oom-score-adj",
	"pids-limit", "read-only", "shm-size", "sysctl", "tmpfs", "ulimit", "user", "u", "workdir", "w",
}

// Tmpfs is a tmpfs mount (docker's --tmpfs).
type Tmpfs struct {
	Path    string
	Options []string
}

// ApplyParameters lays docker parameters onto t. An unsupported key, or a
// value docker itself would refuse, is an error naming the parameter.
func ApplyParameters(t Task, params []Parameter) (Task, error) {
	for _, p := range params {
		if err := applyParameter(&t, p); err != nil {
			return t, fmt.Errorf("docker parameter %q=%q: %w", p.Key, p.Value, err)
		}
	}
	return t, nil
}

func applyParameter(t *Task, p Parameter) error {
	v := p.Value
	switch strings.TrimLeft(p.Key, "-") {
	case "cap-add", "cap-drop":
		c, err := capability(v)
		if err != nil {
			return err
		}
		if p.Key == "cap-add" {
			t.CapAdd = append(t.CapAdd, c)
		} else {
			t.CapDrop = append(t.CapDrop, c)
		}
	case "env", "e":
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE")
		}
		if t.Env == nil {
			t.Env = map[string]string{}
		}
		t.Env[k] = val
	case "hostname", "h":
		if v == "" || len(v) > 63 || strings.ContainsAny(v, " /\x00") {
			return fmt.Errorf("not a hostname")
		}
		t.Hostname = v
	case "label", "l":
		k, val, _ := strings.Cut(v, "=")
		if k == "" {
			return fmt.Errorf("want KEY=VALUE")
		}
		if t.Labels == nil {
			t.Labels = map[string]string{}
		}
		t.Labels[k] = val
	case "oom-score-adj":
		n, err := strconv.Atoi(v)
		if err != nil || n < -1000 || n > 1000 {
			return fmt.Errorf("want an integer in -1000..1000")
		}
		t.OOMScoreAdj = &n
	case "pids-limit":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("want a positive integer")
		}
		t.PidsMax = n
	case "read-only":
		b, err := strconv.ParseBool(cmpOr(v, "true"))
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		t.ReadOnlyRootfs = b
	case "shm-size":
		n, err := byteSize(v)
		if err != nil {
			return err
		}
		t.ShmSize = n
	case "sysctl":
		k, val, ok := strings.Cut(v, "=")
		if !ok || !namespacedSysctl(k) {
			return fmt.Errorf("want KEY=VALUE with a namespaced key (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)")
		}
		if t.Sysctls == nil {
			t.Sysctls = map[string]string{}
		}
		t.Sysctls[k] = val
	case "tmpfs":
		dst, opts, _ := strings.Cut(v, ":")
		if !path.IsAbs(dst) {
			return fmt.Errorf("want an absolute path")
		}
		var o []string
		if opts != "" {
			o = strings.Split(opts, ",")
		}
		t.Tmpfs = append(t.Tmpfs, Tmpfs{Path: path.Clean(dst), Options: o})
	case "ulimit":
		rl, err := ulimit(v)
		if err != nil {
			return err
		}
		t.Rlimits = append(t.Rlimits, rl)
	case "user", "u":
		if v == "" {
			return fmt.Errorf("want a user")
		}
		t.User = v
	case "workdir", "w":
		if !path.IsAbs(v) {
			return fmt.Errorf("want an absolute path")
		}
		t.WorkingDir = v
	default:
		return fmt.Errorf("not supported (supported: %s)", strings.Join(SupportedParameters, ", "))
	}
	return nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// capabilities the kernel knows (capabilities(7)), for a clear error at
// launch rather than runc's at start.
var knownCapabilities = []string{
	"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER",
	"KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN",
	"NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
	"SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT",
	"SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM",
}

// CheckCapability says whether v names a capability the kernel knows
// ("NET_ADMIN", "cap_net_admin", "ALL").
func CheckCapability(v string) error {
	_, err := capability(v)
	return err
}

// capability normalises "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN" to
// "CAP_NET_ADMIN"; "ALL" stays "ALL".
func capability(v string) (string, error) {
	c := strings.TrimPrefix(strings.ToUpper(v), "CAP_")
	if c == "ALL" {
		return c, nil
	}
	if !slices.Contains(knownCapabilities, c) {
		return "", fmt.Errorf("unknown capability")
	}
	return "CAP_" + c, nil
}

// capabilitiesFor is docker's default set with t's additions and drops.
func capabilitiesFor(t Task) []string {
	caps := slices.Clone(defaultCapabilities)
	if slices.Contains(t.CapDrop, "ALL") {
		caps = nil
	}
	for _, c := range t.CapAdd {
		if c == "ALL" {
			caps = caps[:0]
			for _, k := range knownCapabilities {
				caps = append(caps, "CAP_"+k)
			}
			continue
		}
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return slices.DeleteFunc(caps, func(c string) bool { return slices.Contains(t.CapDrop, c) })
}

func namespacedSysctl(k string) bool {
	return strings.HasPrefix(k, "net.") || strings.HasPrefix(k, "kernel.shm") || strings.HasPrefix(k, "kernel.msg") ||
		k == "kernel.sem" || strings.HasPrefix(k, "fs.mqueue.")
}

// byteSize reads docker's sizes: 1048576, 512k, 64m, 1g.
func byteSize(v string) (int64, error) {
	mult := int64(1)
	s := strings.ToLower(strings.TrimSuffix(strings.ToLower(v), "b"))
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, strings.TrimSuffix(s, "m")
	case strings.HasSuffix(s, "g"):
		mult, s = 1<<30, strings.TrimSuffix(s, "g")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a size such as 64m")
	}
	return n * mult, nil
}

var rlimitNames = map[string]string{
	"as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
	"fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
	"msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
	"nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
	"rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}

// ulimit reads docker's "nofile=1024:2048" (soft:hard; one number is both).
func ulimit(v string) (specs.POSIXRlimit, error) {
	name, limits, ok := strings.Cut(v, "=")
	typ, known := rlimitNames[name]
	if !ok || !known {
		return specs.POSIXRlimit{}, fmt.Errorf("want NAME=SOFT[:HARD] with a known limit name")
	}
	softS, hardS, hasHard := strings.Cut(limits, ":")
	soft, err := strconv.ParseUint(softS, 10, 64)
	if err != nil {
		return specs.POSIXRlimit{}, fmt.Errorf("soft limit is not a number")
	}
	hard := soft
	if hasHard {
		if hard, err = strconv.ParseUint(hardS, 10, 64); err != nil || hard < soft {
			return specs.POSIXRlimit{}, fmt.Errorf("hard limit is not a number at least the soft one")
		}
	}
	return specs.POSIXRlimit{Type: typ, Soft: soft, Hard: hard}, nil
}

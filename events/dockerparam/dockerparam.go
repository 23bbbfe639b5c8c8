// Package dockerparam reads Marathon's container.docker.parameters: the
// docker run flags, without their dashes, that atoll maps onto an OCI
// runtime's settings. It is pure and shared: the master refuses a bad
// parameter with a 422 when the app is defined, the agent applies the
// same reading when it runs the container, so the two never disagree.
package dockerparam

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/atollhq/atoll/events"
)

// Keys are the docker run flags that map onto the OCI spec. Any other
// (privileged, net, volume, device, ...) is refused with its name rather
// than run differently from what was asked.
var Keys = []string{
	"cap-add", "cap-drop", "env", "e", "hostname", "h", "label", "l", "oom-score-adj",
	"pids-limit", "read-only", "shm-size", "sysctl", "tmpfs", "ulimit", "user", "u", "workdir", "w",
}

// Settings are what a container's docker parameters ask for.
type Settings struct {
	CapAdd, CapDrop []string // kernel names ("CAP_NET_ADMIN") or "ALL"
	Env             map[string]string
	Hostname        string
	Labels          map[string]string
	OOMScoreAdj     *int
	PidsMax         int64
	ReadOnlyRootfs  bool
	ShmSize         int64 // bytes
	Sysctls         map[string]string
	Tmpfs           []Tmpfs
	Rlimits         []Rlimit
	User            string
	WorkingDir      string
}

// Tmpfs is a tmpfs mount (docker's --tmpfs).
type Tmpfs struct {
	Path    string
	Options []string
}

// Rlimit is a POSIX resource limit (docker's --ulimit), its Type the
// kernel's name ("RLIMIT_NOFILE").
type Rlimit struct {
	Type       string
	Soft, Hard uint64
}

// Parse reads params in order; the first it cannot honour is an error
// naming it (Index says which).
func Parse(params []events.DockerParameter) (Settings, error) {
	var s Settings
	for i, p := range params {
		if err := s.apply(p); err != nil {
			return s, &Error{Index: i, Param: p, Err: err}
		}
	}
	return s, nil
}

// Check says whether one parameter can be honoured: nil, UnknownKeyError
// for a key not in Keys, or why its value cannot.
func Check(p events.DockerParameter) error {
	var s Settings
	return s.apply(p)
}

// Error is a parameter Parse cannot honour.
type Error struct {
	Index int
	Param events.DockerParameter
	Err   error
}

func (e *Error) Error() string {
	return fmt.Sprintf("docker parameter %q=%q: %v", e.Param.Key, e.Param.Value, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// UnknownKeyError is the reason a parameter's key is not one of Keys.
var UnknownKeyError = fmt.Errorf("not supported (supported: %s)", strings.Join(Keys, ", "))

func (s *Settings) apply(p events.DockerParameter) error {
	v := p.Value
	switch strings.TrimLeft(p.Key, "-") {
	case "cap-add", "cap-drop":
		c, err := Capability(v)
		if err != nil {
			return err
		}
		if strings.TrimLeft(p.Key, "-") == "cap-add" {
			s.CapAdd = append(s.CapAdd, c)
		} else {
			s.CapDrop = append(s.CapDrop, c)
		}
	case "env", "e":
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE")
		}
		s.Env = put(s.Env, k, val)
	case "hostname", "h":
		if v == "" || len(v) > 63 || strings.ContainsAny(v, " /\x00") {
			return fmt.Errorf("not a hostname")
		}
		s.Hostname = v
	case "label", "l":
		k, val, _ := strings.Cut(v, "=")
		if k == "" {
			return fmt.Errorf("want KEY=VALUE")
		}
		s.Labels = put(s.Labels, k, val)
	case "oom-score-adj":
		n, err := strconv.Atoi(v)
		if err != nil || n < -1000 || n > 1000 {
			return fmt.Errorf("want an integer in -1000..1000")
		}
		s.OOMScoreAdj = &n
	case "pids-limit":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("want a positive integer")
		}
		s.PidsMax = n
	case "read-only":
		b, err := strconv.ParseBool(cmp(v, "true"))
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		s.ReadOnlyRootfs = b
	case "shm-size":
		n, err := byteSize(v)
		if err != nil {
			return err
		}
		s.ShmSize = n
	case "sysctl":
		k, val, ok := strings.Cut(v, "=")
		if !ok || !namespacedSysctl(k) {
			return fmt.Errorf("want KEY=VALUE with a namespaced key (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)")
		}
		s.Sysctls = put(s.Sysctls, k, val)
	case "tmpfs":
		dst, opts, _ := strings.Cut(v, ":")
		if !path.IsAbs(dst) {
			return fmt.Errorf("want an absolute path")
		}
		var o []string
		if opts != "" {
			o = strings.Split(opts, ",")
		}
		s.Tmpfs = append(s.Tmpfs, Tmpfs{Path: path.Clean(dst), Options: o})
	case "ulimit":
		rl, err := ulimit(v)
		if err != nil {
			return err
		}
		s.Rlimits = append(s.Rlimits, rl)
	case "user", "u":
		if v == "" {
			return fmt.Errorf("want a user")
		}
		s.User = v
	case "workdir", "w":
		if !path.IsAbs(v) {
			return fmt.Errorf("want an absolute path")
		}
		s.WorkingDir = v
	default:
		return UnknownKeyError
	}
	return nil
}

func put(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// KnownCapabilities are the capabilities the kernel knows
// (capabilities(7)), without their CAP_ prefix.
var KnownCapabilities = []string{
	"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER",
	"KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN",
	"NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
	"SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT",
	"SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM",
}

// Capability is v as the kernel names it ("net_admin", "NET_ADMIN" and
// "CAP_NET_ADMIN" are "CAP_NET_ADMIN"; "all" is "ALL"), or an error if the
// kernel has no such capability.
func Capability(v string) (string, error) {
	c := events.CapabilityName(v)
	if c != "ALL" && !slices.Contains(KnownCapabilities, strings.TrimPrefix(c, "CAP_")) {
		return "", fmt.Errorf("unknown capability")
	}
	return c, nil
}

func namespacedSysctl(k string) bool {
	return strings.HasPrefix(k, "net.") || strings.HasPrefix(k, "kernel.shm") || strings.HasPrefix(k, "kernel.msg") ||
		k == "kernel.sem" || strings.HasPrefix(k, "fs.mqueue.")
}

// byteSize reads docker's sizes: 1048576, 512k, 64m, 1g.
func byteSize(v string) (int64, error) {
	mult := int64(1)
	s := strings.TrimSuffix(strings.ToLower(v), "b")
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
func ulimit(v string) (Rlimit, error) {
	name, limits, ok := strings.Cut(v, "=")
	typ, known := rlimitNames[name]
	if !ok || !known {
		return Rlimit{}, fmt.Errorf("want NAME=SOFT[:HARD] with a known limit name")
	}
	softS, hardS, hasHard := strings.Cut(limits, ":")
	soft, err := strconv.ParseUint(softS, 10, 64)
	if err != nil {
		return Rlimit{}, fmt.Errorf("soft limit is not a number")
	}
	hard := soft
	if hasHard {
		if hard, err = strconv.ParseUint(hardS, 10, 64); err != nil || hard < soft {
			return Rlimit{}, fmt.Errorf("hard limit is not a number at least the soft one")
		}
	}
	return Rlimit{Type: typ, Soft: soft, Hard: hard}, nil
}

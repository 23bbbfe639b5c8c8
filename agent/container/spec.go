package container

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/atollhq/atoll/events"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SandboxPath is where a task's sandbox appears inside its container, as
// in Mesos (MESOS_SANDBOX).
const SandboxPath = "/mnt/mesos/sandbox"

// specVersion is the runtime-spec version written into config.json: the
// one Debian's runc 1.1.5 implements; the fields used here exist in it.
const specVersion = "1.0.2"

// Task is what the agent knows of a task to run in a container: the
// app's fields (Marathon's cmd, args, env, volumes, cpus, mem) and where
// things are on the host.
type Task struct {
	ID       string // the container id (unique on the agent)
	Hostname string // the container's hostname ("" = the ID)

	Cmd  string   // Marathon "cmd": run by /bin/sh -c, replacing the image's ENTRYPOINT and CMD
	Args []string // Marathon "args": appended to the image's ENTRYPOINT
	Env  map[string]string
	// User is the app's "user" (a name or uid[:gid] in the image); ""
	// means the image's USER, and root when the image names none.
	User string

	Rootfs  string // the mounted root filesystem (imagestore.Store.Rootfs)
	Sandbox string // the task's sandbox on the host, mounted at SandboxPath
	Volumes []Volume

	CPUs    float64 // cpu shares (cpus × 1024) and CFS quota (cpus × period)
	MemMB   float64 // memory limit; the kernel OOM-kills past it
	PidsMax int64   // 0 = no pids limit
	// CgroupsPath is the container's cgroup: relative paths are under
	// the runtime's own cgroup (runc's cgroupfs driver), where the agent
	// keeps its tasks ("atoll/<task>"); "" means "atoll/<ID>".
	CgroupsPath string
	// NetNS is a network namespace file to join ("/var/run/netns/x",
	// made by the CNI setup); "" shares the host's network, as
	// Marathon's "networks": [{"mode": "host"}].
	NetNS string

	// What docker parameters set (ApplyParameters).
	WorkingDir     string // over the image's WorkingDir
	CapAdd         []string
	CapDrop        []string
	ReadOnlyRootfs bool
	Labels         map[string]string // OCI annotations
	ShmSize        int64             // /dev/shm bytes; 0 = 64 MB
	Sysctls        map[string]string
	Tmpfs          []Tmpfs
	Rlimits        []specs.POSIXRlimit
	OOMScoreAdj    *int
}

// Volume is one of Marathon's container volumes with a host path.
type Volume struct {
	// ContainerPath: absolute, or relative to the sandbox (Mesos: "If the
	// path is a relative path, it is relative to the container's sandbox").
	ContainerPath string
	// HostPath: absolute, or relative to the task's sandbox on the host.
	HostPath string
	ReadOnly bool // Marathon's mode "RO"
}

// cfsPeriod is the CFS period cpus are measured against (100 ms, the
// kernel's default and Mesos's).
const cfsPeriod = 100000

// minMemory is the smallest memory limit given to the kernel: runc
// refuses less than a few MB, and no process starts in less.
const minMemory = 4 << 20

// defaultPath is docker's PATH for images whose Env has none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultCapabilities are docker's default capabilities for a container.
var defaultCapabilities = events.DockerDefaultCapabilities

// Command is the process a task runs, by Mesos's rules for a command
// task in an image (docs/isolators/docker-runtime.md, "Determine the
// Launch Command"), with Marathon's cmd as a shell command and its args
// as arguments: a cmd runs as /bin/sh -c cmd, ignoring ENTRYPOINT and
// CMD; args replace CMD after ENTRYPOINT (or after CMD[0] when the image
// has no ENTRYPOINT); neither runs ENTRYPOINT + CMD.
func Command(cmd string, args []string, img v1.Config) ([]string, error) {
	if cmd != "" && len(args) > 0 {
		return nil, errors.New("a task has either cmd or args, not both")
	}
	switch {
	case cmd != "":
		return []string{"/bin/sh", "-c", cmd}, nil
	case len(args) > 0:
		if len(img.Entrypoint) > 0 {
			return append(slices.Clone(img.Entrypoint), args...), nil
		}
		if len(img.Cmd) > 0 {
			return append([]string{img.Cmd[0]}, args...), nil
		}
	default:
		if argv := append(slices.Clone(img.Entrypoint), img.Cmd...); len(argv) > 0 {
			return argv, nil
		}
	}
	return nil, errors.New("the image has neither ENTRYPOINT nor CMD, and the app gives no cmd")
}

// Environment is the image's Env with the task's env laid over it (the
// task's wins, as a docker run -e does), plus PATH when neither sets it,
// HOME from the user, and MESOS_SANDBOX.
func Environment(img v1.Config, env map[string]string, home string) []string {
	var out []string
	index := map[string]int{}
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			return
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range img.Env {
		set(kv)
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		set(k + "=" + env[k])
	}
	if _, ok := index["PATH"]; !ok {
		set(defaultPath)
	}
	if _, ok := index["HOME"]; !ok && home != "" {
		set("HOME=" + home)
	}
	if _, ok := index["MESOS_SANDBOX"]; !ok {
		set("MESOS_SANDBOX=" + SandboxPath)
	}
	return out
}

// Spec builds the OCI runtime spec for t from its image's config, with
// the user already resolved in the image (ResolveUser).
func Spec(t Task, img v1.Config, user User) (*specs.Spec, error) {
	if t.ID == "" || t.Rootfs == "" || t.Sandbox == "" {
		return nil, errors.New("container spec: a task needs an ID, a rootfs and a sandbox")
	}
	argv, err := Command(t.Cmd, t.Args, img)
	if err != nil {
		return nil, err
	}
	cwd := t.WorkingDir
	if cwd == "" {
		cwd = img.WorkingDir
	}
	if cwd == "" {
		cwd = SandboxPath
	}
	if !path.IsAbs(cwd) {
		return nil, fmt.Errorf("container spec: the image's WorkingDir %q is not absolute", cwd)
	}
	mounts, err := mountsFor(t)
	if err != nil {
		return nil, err
	}
	res, err := resources(t)
	if err != nil {
		return nil, err
	}
	cgroupsPath := t.CgroupsPath
	if cgroupsPath == "" {
		cgroupsPath = "atoll/" + t.ID
	}
	hostname := t.Hostname
	if hostname == "" {
		hostname = t.ID
	}
	for k := range t.Sysctls {
		if strings.HasPrefix(k, "net.") && t.NetNS == "" {
			return nil, fmt.Errorf("container spec: sysctl %s needs the task's own network (container/bridge), not the host's", k)
		}
	}
	caps := capabilitiesFor(t)
	ns := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.MountNamespace},
		{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
	}
	if t.NetNS != "" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: t.NetNS})
	}
	return &specs.Spec{
		Version: specVersion,
		Process: &specs.Process{
			User:         specs.User{UID: user.UID, GID: user.GID, AdditionalGids: user.AdditionalGids},
			Args:         argv,
			Env:          Environment(img, t.Env, user.Home),
			Cwd:          cwd,
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			Rlimits:      t.Rlimits,
			OOMScoreAdj:  t.OOMScoreAdj,
		},
		Root:        &specs.Root{Path: t.Rootfs, Readonly: t.ReadOnlyRootfs},
		Annotations: t.Labels,
		Hostname:    hostname,
		Mounts:      mounts,
		Linux: &specs.Linux{
			Namespaces:  ns,
			Resources:   res,
			CgroupsPath: cgroupsPath,
			Sysctl:      t.Sysctls,
			// runc's defaults: what a process in a container must not
			// read or change on the host.
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}, nil
}

func resources(t Task) (*specs.LinuxResources, error) {
	res := &specs.LinuxResources{
		// Only the standard devices (runc adds null, zero, tty, ...).
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}
	if t.MemMB < 0 || t.CPUs < 0 || t.PidsMax < 0 {
		return nil, fmt.Errorf("container spec: negative resources (cpus %v, mem %v, pids %d)", t.CPUs, t.MemMB, t.PidsMax)
	}
	if t.MemMB > 0 {
		limit := max(int64(math.Ceil(t.MemMB*(1<<20))), minMemory)
		res.Memory = &specs.LinuxMemory{Limit: &limit}
	}
	if t.CPUs > 0 {
		// Mesos's cgroups/cpu isolator: shares = cpus × 1024 (at least
		// the kernel's 2), quota = cpus × period (at least 1 ms).
		shares := max(uint64(math.Round(t.CPUs*1024)), 2)
		quota := max(int64(math.Round(t.CPUs*cfsPeriod)), 1000)
		period := uint64(cfsPeriod)
		res.CPU = &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period}
	}
	if t.PidsMax > 0 {
		p := t.PidsMax
		res.Pids = &specs.LinuxPids{Limit: &p}
	}
	return res, nil
}

// mountsFor is runc's default set of kernel filesystems, the host's DNS
// files, the sandbox and the app's volumes.
func mountsFor(t Task) ([]specs.Mount, error) {
	m := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(cmp.Or(t.ShmSize, 64<<20), 10)}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		// Name resolution as on the host, as docker copies these in.
		{Destination: "/etc/resolv.conf", Type: "bind", Source: "/etc/resolv.conf", Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}},
		{Destination: "/etc/hosts", Type: "bind", Source: "/etc/hosts", Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}},
		{Destination: SandboxPath, Type: "bind", Source: t.Sandbox, Options: []string{"rbind", "rw"}},
	}
	for _, tm := range t.Tmpfs {
		m = append(m, specs.Mount{Destination: tm.Path, Type: "tmpfs", Source: "tmpfs", Options: append([]string{"nosuid", "nodev"}, tm.Options...)})
	}
	for _, v := range t.Volumes {
		if v.ContainerPath == "" || v.HostPath == "" {
			return nil, fmt.Errorf("container spec: volume %+v needs containerPath and hostPath", v)
		}
		dst := v.ContainerPath
		if !path.IsAbs(dst) {
			dst = path.Join(SandboxPath, dst)
		}
		src := v.HostPath
		if !filepath.IsAbs(src) {
			src = filepath.Join(t.Sandbox, src)
		}
		if climbsOut(v.ContainerPath) || climbsOut(v.HostPath) {
			return nil, fmt.Errorf("container spec: volume %q -> %q leaves the sandbox with ..", v.HostPath, v.ContainerPath)
		}
		opts := []string{"rbind", "rw"}
		if v.ReadOnly {
			opts = []string{"rbind", "ro"}
		}
		m = append(m, specs.Mount{Destination: path.Clean(dst), Type: "bind", Source: filepath.Clean(src), Options: opts})
	}
	return m, nil
}

// climbsOut reports whether a relative path given by the app climbs out
// of the sandbox it is relative to.
func climbsOut(given string) bool {
	if path.IsAbs(given) {
		return false
	}
	c := path.Clean(given)
	return c == ".." || strings.HasPrefix(c, "../")
}

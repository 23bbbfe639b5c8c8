package cgroup

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containerd/cgroups/v3"
)

// Paths name one cgroup on this host, each path from its hierarchy's
// root: one per v1 controller we use, or the one v2 path. A task's
// checkpoint keeps them, so that a restarted agent finds the task's cgroup
// wherever the agent itself now runs.
type Paths struct {
	V1 map[string]string `json:"v1,omitempty"`
	V2 string            `json:"v2,omitempty"`
}

// IsZero reports whether p names no cgroup.
func (p Paths) IsZero() bool { return len(p.V1) == 0 && p.V2 == "" }

// child is the cgroup name under p.
func (p Paths) child(name string) Paths {
	if p.V2 != "" {
		return Paths{V2: filepath.Join(p.V2, name)}
	}
	out := Paths{V1: map[string]string{}}
	for c, dir := range p.V1 {
		out.V1[c] = filepath.Join(dir, name)
	}
	return out
}

// v1Controllers are the v1 hierarchies a task's cgroup spans: cpu and
// cpuacct may be separate mounts (they are on the test machines).
var v1Controllers = []string{"memory", "cpu", "cpuacct", "pids"}

// unifiedMount is where the v2 hierarchy is mounted on a unified host.
const unifiedMount = "/sys/fs/cgroup"

// useV2 reports whether this host's controllers are on cgroup v2. A hybrid
// host (v1 controllers, plus a v2 mount that holds none of ours) is v1, as
// runc treats it.
func useV2() (bool, error) {
	switch cgroups.Mode() {
	case cgroups.Unified:
		return true, nil
	case cgroups.Legacy, cgroups.Hybrid:
		return false, nil
	}
	return false, errors.New("no cgroup file system mounted at /sys/fs/cgroup")
}

// checkName refuses a cgroup name that is empty or climbs out of its
// parent.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00\n") {
		return fmt.Errorf("invalid cgroup name %q", name)
	}
	return nil
}

package cgroup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
)

// Group is one task's cgroup.
type Group struct {
	paths Paths
}

// LoadGroup is the cgroup at paths (a checkpoint's). It need not exist:
// reads of a cgroup that is gone fail with fs.ErrNotExist.
func LoadGroup(paths Paths) *Group { return &Group{paths: paths} }

// Paths is where the cgroup is, for a checkpoint.
func (g *Group) Paths() Paths { return g.paths }

// file is a control file of the cgroup: the v2 one, or the one in the v1
// hierarchy of controller.
func (g *Group) file(controller, name string) string {
	if g.paths.V2 != "" {
		return filepath.Join(unifiedMount, g.paths.V2, name)
	}
	return filepath.Join("/sys/fs/cgroup", controller, g.paths.V1[controller], name)
}

// dir is the cgroup's folder (in the memory hierarchy on v1).
func (g *Group) dir() string { return filepath.Dir(g.file("memory", "x")) }

// dirs are the cgroup's folders, one per hierarchy.
func (g *Group) dirs() []string {
	if g.paths.V2 != "" {
		return []string{g.dir()}
	}
	var out []string
	for _, c := range v1Controllers {
		if _, ok := g.paths.V1[c]; ok {
			out = append(out, filepath.Dir(g.file(c, "x")))
		}
	}
	return out
}

// Add moves process pid into the cgroup, in every hierarchy.
func (g *Group) Add(pid int) error {
	for _, d := range g.dirs() {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("move pid %d into cgroup %s: %w", pid, d, err)
		}
	}
	return nil
}

// Procs lists the processes in the cgroup.
func (g *Group) Procs() ([]int, error) {
	data, err := os.ReadFile(filepath.Join(g.dir(), "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// OOMKills is how many processes of the cgroup the kernel's OOM killer
// killed: the oom_kill line of memory.oom_control (v1) or memory.events
// (v2). A SIGKILL with this at zero was someone's kill -9.
func (g *Group) OOMKills() (uint64, error) {
	name := "memory.oom_control"
	if g.paths.V2 != "" {
		name = "memory.events"
	}
	return readKey(g.file("memory", name), "oom_kill")
}

// MemoryLimitExceeded is Mesos's message for a cgroup whose processes the
// OOM killer killed, and whether it did.
func (g *Group) MemoryLimitExceeded() (string, bool) {
	n, err := g.OOMKills()
	if err != nil || n == 0 {
		return "", false
	}
	u, _ := g.Usage()
	return MemoryLimitMessage(u.MemLimitBytes, u.MemMaxBytes), true
}

// Destroy kills whatever still runs in the cgroup, waits for it to go and
// removes the cgroup, in every hierarchy. A cgroup already gone is no
// error.
func (g *Group) Destroy(ctx context.Context) error {
	for {
		pids, err := g.Procs()
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("destroy cgroup %s: %w", g.dir(), err)
		}
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("destroy cgroup %s: processes %v still in it: %w", g.dir(), pids, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return g.remove()
}

// remove removes the (empty) cgroup from every hierarchy.
func (g *Group) remove() error {
	if g.paths.V2 != "" {
		m, err := cgroup2.Load(g.paths.V2)
		if err == nil {
			err = m.Delete()
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove cgroup %s: %w", g.paths.V2, err)
		}
		return nil
	}
	subs, err := v1Subsystems()
	if err != nil {
		return err
	}
	cg, err := cgroup1.Load(v1Path(g.paths), cgroup1.WithHierarchy(fixedHierarchy(subs)))
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil
	}
	if err == nil {
		err = cg.Delete()
	}
	if err != nil {
		return fmt.Errorf("remove cgroup %s: %w", g.dir(), err)
	}
	return nil
}

// readKey reads the value of key in a "key value" per line file.
func readKey(path, key string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

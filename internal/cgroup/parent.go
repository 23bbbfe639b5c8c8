package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
)

// Parent is the cgroup an agent owns, its tasks' cgroups inside: its
// limits are what the agent advertises, so its tasks together cannot use
// more. A container task's runtime (runc) puts the container's cgroup
// under it too (RuncPath).
type Parent struct {
	name  string
	paths Paths
}

// agentLeaf is where an agent on cgroup v2 moves itself: v2 lets a cgroup
// hand controllers to children only while no process sits in it, so the
// agent leaves the cgroup it was started in (its service's) to its tasks'
// parent and this sibling.
const agentLeaf = "atoll-agent"

// OpenParent creates (or opens again, after a restart) the agent's parent
// cgroup and sets its limits. A relative name is under the agent's own
// cgroup, in each hierarchy; an absolute one is from the hierarchy's
// root.
func OpenParent(name string, l Limits) (*Parent, error) {
	clean := filepath.Clean(name)
	if name == "" || clean == "/" || clean == "." || strings.HasPrefix(clean, "..") {
		return nil, fmt.Errorf("cgroup parent %q: want a name, or an absolute path below the root", name)
	}
	v2, err := useV2()
	if err != nil {
		return nil, fmt.Errorf("cgroup parent: %w", err)
	}
	if v2 {
		return openParentV2(clean, l)
	}
	return openParentV1(clean, l)
}

func openParentV1(name string, l Limits) (*Parent, error) {
	subs, err := v1Subsystems()
	if err != nil {
		return nil, fmt.Errorf("cgroup parent: %w", err)
	}
	p := &Parent{name: name, paths: Paths{V1: map[string]string{}}}
	own := cgroup1.NestedPath(name)
	for _, s := range subs {
		c := string(s.Name())
		if filepath.IsAbs(name) {
			p.paths.V1[c] = name
			continue
		}
		dir, err := own(s.Name())
		if err != nil {
			return nil, fmt.Errorf("cgroup parent: the agent's own %s cgroup: %w", c, err)
		}
		p.paths.V1[c] = dir
	}
	if _, err := cgroup1.New(v1Path(p.paths), l.Spec(), cgroup1.WithHierarchy(fixedHierarchy(subs))); err != nil {
		return nil, fmt.Errorf("cgroup parent %s: %w", name, err)
	}
	return p, nil
}

func openParentV2(name string, l Limits) (*Parent, error) {
	_, own, err := cgroups.ParseCgroupFileUnified("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("cgroup parent: the agent's own cgroup: %w", err)
	}
	path := name
	if !filepath.IsAbs(name) {
		base := own
		if filepath.Base(own) == agentLeaf {
			base = filepath.Dir(own) // moved there by an earlier agent in this process
		} else if own != "/" {
			// Controllers reach the children of our cgroup only once we
			// have left it.
			if err := moveSelf(filepath.Join(base, agentLeaf)); err != nil {
				return nil, fmt.Errorf("cgroup parent: %w", err)
			}
		}
		path = filepath.Join(base, name)
	}
	if _, err := cgroup2.NewManager(unifiedMount, path, v2Resources(l)); err != nil {
		return nil, fmt.Errorf("cgroup parent %s: %w", path, err)
	}
	return &Parent{name: name, paths: Paths{V2: path}}, nil
}

// moveSelf moves this process into the v2 cgroup leaf (made if missing).
func moveSelf(leaf string) error {
	dir := filepath.Join(unifiedMount, leaf)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("agent leaf cgroup: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		return fmt.Errorf("move the agent into %s: %w", leaf, err)
	}
	return nil
}

// Paths is where the parent is.
func (p *Parent) Paths() Paths { return p.paths }

// RuncPath is the cgroupsPath a container task's OCI spec gives runc for
// task id, so that the container's cgroup is Child(id): on v1 it is
// relative (runc, the agent's child and so in the agent's cgroups,
// resolves it under its own cgroup in each hierarchy, as OpenParent did);
// on v2 it is absolute (the agent itself sits in a leaf beside the
// parent).
func (p *Parent) RuncPath(id string) string {
	if p.paths.V2 != "" {
		return filepath.Join(p.paths.V2, id)
	}
	return filepath.Join(p.name, id)
}

// NewGroup creates the cgroup of task id, with its limits. A cgroup left
// by an earlier task of that id is reused, its limits set again.
func (p *Parent) NewGroup(id string, l Limits) (*Group, error) {
	if err := checkName(id); err != nil {
		return nil, err
	}
	paths := p.paths.child(id)
	if paths.V2 != "" {
		if _, err := cgroup2.NewManager(unifiedMount, paths.V2, v2Resources(l)); err != nil {
			return nil, fmt.Errorf("task cgroup %s: %w", paths.V2, err)
		}
		return LoadGroup(paths), nil
	}
	subs, err := v1Subsystems()
	if err != nil {
		return nil, err
	}
	if _, err := cgroup1.New(v1Path(paths), l.Spec(), cgroup1.WithHierarchy(fixedHierarchy(subs))); err != nil {
		g := LoadGroup(paths)
		_ = g.remove() // what was made of it
		return nil, fmt.Errorf("task cgroup %s: %w", paths.V1["memory"], err)
	}
	return LoadGroup(paths), nil
}

// Children names the cgroups under the parent: tasks' cgroups, live or
// left behind.
func (p *Parent) Children() ([]string, error) {
	dir := LoadGroup(p.paths).dir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list task cgroups: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// RemoveIfEmpty removes the parent if no cgroup is left in it (an agent
// that stops with no tasks); one that holds tasks' cgroups stays.
func (p *Parent) RemoveIfEmpty() error {
	names, err := p.Children()
	if err != nil || len(names) > 0 {
		return err
	}
	for _, d := range LoadGroup(p.paths).dirs() {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove cgroup parent: %w", err)
		}
	}
	return nil
}

// Child is the cgroup name under the parent.
func (p *Parent) Child(name string) *Group { return LoadGroup(p.paths.child(name)) }

// v1Subsystems are the mounted v1 hierarchies of v1Controllers; every one
// must be there.
func v1Subsystems() ([]cgroup1.Subsystem, error) {
	all, err := cgroup1.Default()
	if err != nil {
		return nil, fmt.Errorf("cgroup v1 hierarchies: %w", err)
	}
	var out []cgroup1.Subsystem
	for _, c := range v1Controllers {
		found := false
		for _, s := range all {
			if string(s.Name()) == c {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("cgroup v1 controller %q is not mounted under /sys/fs/cgroup", c)
		}
	}
	return out, nil
}

func fixedHierarchy(subs []cgroup1.Subsystem) cgroup1.Hierarchy {
	return func() ([]cgroup1.Subsystem, error) { return subs, nil }
}

// v1Path gives the cgroups library each controller's path of p.
func v1Path(p Paths) cgroup1.Path {
	return func(n cgroup1.Name) (string, error) {
		if dir, ok := p.V1[string(n)]; ok {
			return dir, nil
		}
		return "", cgroup1.ErrControllerNotActive
	}
}

// v2Resources is l for the v2 library; memory, cpu and pids are always
// named so that they are enabled for the cgroup.
func v2Resources(l Limits) *cgroup2.Resources {
	r := cgroup2.ToResources(l.Spec())
	if r.Memory == nil {
		r.Memory = &cgroup2.Memory{}
	}
	if r.CPU == nil {
		r.CPU = &cgroup2.CPU{}
	}
	if r.Pids == nil {
		r.Pids = &cgroup2.Pids{}
	}
	return r
}

package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A task's cgroup under a parent, on the real cgroup file system (as
// root): limits set, a process held in it, its usage read, and all of it
// gone at the end, the process killed with it.
func TestParentAndTaskGroupOnTheHost(t *testing.T) {
	name := fmt.Sprintf("atoll-cgroup-test-%d", os.Getpid())
	p, err := OpenParent(name, ParentLimits(1, 256))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.RemoveIfEmpty() })
	if p.Paths().V2 != "" {
		t.Fatal("these checks read cgroup v1 files; the host is v2")
	}
	read := func(g *Group, controller, file string) string {
		t.Helper()
		data, err := os.ReadFile(g.file(controller, file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(data))
	}
	parent := LoadGroup(p.Paths())
	if got := read(parent, "memory", "memory.limit_in_bytes"); got != fmt.Sprint(256<<20) {
		t.Errorf("parent memory limit = %s", got)
	}

	g, err := p.NewGroup("web.1", TaskLimits(0.5, 64, 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ controller, file, want string }{
		{"memory", "memory.limit_in_bytes", fmt.Sprint(64 << 20)},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"pids", "pids.max", "32"},
	} {
		if got := read(g, f.controller, f.file); got != f.want {
			t.Errorf("%s = %s, want %s", f.file, got, f.want)
		}
	}
	// runc, started by the agent (so in its cgroups), resolves the
	// relative cgroupsPath to this same cgroup.
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[1] == "memory" {
			if got, want := filepath.Join(parts[2], p.RuncPath("web.1")), g.Paths().V1["memory"]; got != want {
				t.Errorf("runc would use %s, the task's cgroup is %s", got, want)
			}
		}
	}

	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if err := g.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if procs, err := g.Procs(); err != nil || len(procs) != 1 || procs[0] != cmd.Process.Pid {
		t.Errorf("procs = %v (%v), want [%d]", procs, err, cmd.Process.Pid)
	}
	u, err := g.Usage()
	if err != nil || u.MemLimitBytes != 64<<20 || u.CPULimit != 0.5 {
		t.Errorf("usage = %+v (%v), want the limits read back", u, err)
	}
	if n, err := g.OOMKills(); err != nil || n != 0 {
		t.Errorf("oom kills = %d (%v), want 0", n, err)
	}
	if names, err := p.Children(); err != nil || len(names) != 1 || names[0] != "web.1" {
		t.Errorf("children = %v (%v)", names, err)
	}
	if err := p.RemoveIfEmpty(); err != nil || !exists(parent) {
		t.Errorf("a parent with a task's cgroup was removed (%v)", err)
	}

	if err := g.Destroy(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done: // killed with its cgroup
	case <-time.After(10 * time.Second):
		t.Fatal("the process outlived its cgroup")
	}
	if exists(g) {
		t.Error("the task's cgroup is still there")
	}
	if err := p.RemoveIfEmpty(); err != nil || exists(parent) {
		t.Errorf("the empty parent stayed (%v)", err)
	}
}

func exists(g *Group) bool {
	_, err := os.Stat(g.dir())
	return err == nil
}

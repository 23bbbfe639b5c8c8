package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests make real cgroups (as root): cgroup v1 on the test
// machines, v2 in the VM TestCgroupV2InAVM boots. Each checks what a user
// notices on either.

// A task's cgroup under a parent: limits set, a process held in it, its
// usage read, and all of it gone at the end, the process killed with it.
func TestParentAndTaskGroupOnTheHost(t *testing.T) {
	p := openTestParent(t, ParentLimits(1, 256))
	parent := LoadGroup(p.Paths())
	if got := control(t, parent, "memory", "memory.limit_in_bytes", "memory.max"); got != fmt.Sprint(256<<20) {
		t.Errorf("parent memory limit = %s", got)
	}

	g, err := p.NewGroup("web.1", TaskLimits(0.5, 64, 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ controller, v1, v2, want1, want2 string }{
		{"memory", "memory.limit_in_bytes", "memory.max", fmt.Sprint(64 << 20), fmt.Sprint(64 << 20)},
		// v2 has weights: runc's and the cgroups library's mapping of
		// shares (1024, one cpu, is weight 100, v2's default).
		{"cpu", "cpu.shares", "cpu.weight", "512", "59"},
		{"cpu", "cpu.cfs_quota_us", "cpu.max", "50000", "50000 100000"},
		{"pids", "pids.max", "pids.max", "32", "32"},
	} {
		want := f.want1
		if g.Paths().V2 != "" {
			want = f.want2
		}
		if got := control(t, g, f.controller, f.v1, f.v2); got != want {
			t.Errorf("%s = %s, want %s", f.v1, got, want)
		}
	}
	// runc, started by the agent, puts a container in this same cgroup:
	// on v1 it resolves the relative cgroupsPath under its own cgroup;
	// on v2 the path is absolute.
	if v2 := g.Paths().V2; v2 != "" {
		if got := p.RuncPath("web.1"); got != v2 {
			t.Errorf("runc would use %s, the task's cgroup is %s", got, v2)
		}
	} else {
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
	}

	tk := startIn(t, g, "exec "+busybox+" sleep 300")
	if procs, err := g.Procs(); err != nil || len(procs) != 1 || procs[0] != tk.cmd.Process.Pid {
		t.Errorf("procs = %v (%v), want [%d]", procs, err, tk.cmd.Process.Pid)
	}
	u, err := g.Usage()
	if err != nil || u.MemLimitBytes != 64<<20 || u.CPULimit != 0.5 {
		t.Errorf("usage = %+v (%v), want the limits read back", u, err)
	}
	if n, err := g.OOMKills(); err != nil || n != 0 {
		t.Errorf("oom kills = %d (%v), want 0", n, err)
	}
	if _, oom := g.MemoryLimitExceeded(); oom {
		t.Error("a sleeping task exceeded its memory limit")
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
	case <-tk.done: // killed with its cgroup
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

// A task filling a 100 MB buffer, with a 32 MB limit: the kernel kills
// it, and the cgroup says so in Mesos's words.
func TestMemoryLimitOOMKillsWithMesosMessage(t *testing.T) {
	p := openTestParent(t, ParentLimits(1, 256))
	g, err := p.NewGroup("hog.1", TaskLimits(1, 32, 0))
	if err != nil {
		t.Fatal(err)
	}
	// dd reads /dev/zero into its buffer: the kernel touches every page,
	// quickly even in an emulated VM.
	tk := startIn(t, g, "exec "+busybox+" dd if=/dev/zero of=/dev/null bs=100000000 count=1")
	err = tk.wait(t, time.Minute)
	if ws, ok := exitStatus(err); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the hog ended with %v, want SIGKILL", err)
	}
	if n, err := g.OOMKills(); err != nil || n == 0 {
		t.Errorf("oom kills = %d (%v), want the kernel's", n, err)
	}
	msg, oom := g.MemoryLimitExceeded()
	t.Logf("OOM: %s", msg)
	if !oom || !strings.HasPrefix(msg, "Memory limit exceeded: Requested: 32MB Maximum Used: ") {
		t.Errorf("memory limit exceeded = %v, %q; want Mesos's message", oom, msg)
	}
}

func exitStatus(err error) (syscall.WaitStatus, bool) {
	ee, ok := err.(interface{ Sys() any })
	if !ok {
		return 0, false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ws, ok
}

// A busy loop with cpus 0.1 gets a tenth of a core, measured from the
// cgroup's own CPU time (as agent's TestCPUQuotaHoldsABusyLoop does).
func TestCPUQuotaHoldsABusyLoop(t *testing.T) {
	p := openTestParent(t, ParentLimits(1, 256))
	g, err := p.NewGroup("spin.1", TaskLimits(0.1, 32, 0))
	if err != nil {
		t.Fatal(err)
	}
	startIn(t, g, "while :; do :; done")
	usage := func() (time.Time, float64) {
		t.Helper()
		if g.Paths().V2 != "" {
			us, err := strconv.ParseUint(statKey(control(t, g, "cpu", "", "cpu.stat"), "usage_usec"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return time.Now(), float64(us) / 1e6
		}
		ns, err := strconv.ParseUint(control(t, g, "cpuacct", "cpuacct.usage", ""), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return time.Now(), float64(ns) / 1e9
	}
	t0, u0 := usage()
	// Long enough for many 100 ms periods; the machine is loaded, so only
	// an upper bound is asserted (a loaded machine may give less).
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	t1, u1 := usage()
	wall, used := t1.Sub(t0).Seconds(), u1-u0
	const tolerance = 0.3
	// One period's quota on top: the window's edges cut periods.
	limit := 0.1*wall*(1+tolerance) + 0.01
	t.Logf("busy loop with cpus 0.1: %.3f s of CPU in %.3f s (%.1f%% of a core); limit %.3f s", used, wall, 100*used/wall, limit)
	if used > limit {
		t.Errorf("used %.3f s of CPU in %.3f s, more than cpus 0.1 allows (%.3f s)", used, wall, limit)
	}
	if used <= 0 {
		t.Error("the busy loop used no CPU")
	}
	// What the agent reports: the limit, the time used, the throttling.
	u, err := g.Usage()
	if err != nil || u.CPULimit != 0.1 || u.CPUUserSecs+u.CPUSystemSecs <= 0 || u.NrThrottled == 0 {
		t.Errorf("usage = %+v (%v), want cpus 0.1, CPU time and throttled periods", u, err)
	}
}

// Forty background sleeps under a pids limit of 20: the fork past the
// limit fails, and destroying the cgroup takes the sleeps it left.
func TestPidsLimitHolds(t *testing.T) {
	p := openTestParent(t, ParentLimits(1, 256))
	g, err := p.NewGroup("forks.1", TaskLimits(0.5, 64, 20))
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`i=0; while [ $i -lt 40 ]; do %s sleep 300 & i=$((i+1)); done; echo forked all; wait`, busybox)
	tk := startIn(t, g, script)
	if err := tk.wait(t, time.Minute); err == nil {
		t.Error("the shell succeeded")
	}
	if strings.Contains(output(t, tk.stdout), "forked all") {
		t.Error("all 40 forks succeeded under a pids limit of 20")
	}
	if !strings.Contains(strings.ToLower(output(t, tk.stderr)), "fork") {
		t.Errorf("stderr = %q, want a failed fork", output(t, tk.stderr))
	}
	procs, err := g.Procs()
	if err != nil || len(procs) == 0 || len(procs) > 20 {
		t.Errorf("procs = %v (%v), want the sleeps, at most 20", procs, err)
	}
	if err := g.Destroy(t.Context()); err != nil {
		t.Fatal(err)
	}
	if exists(g) {
		t.Error("the task's cgroup is still there")
	}
	for _, pid := range procs {
		if syscall.Kill(pid, 0) == nil && inGroup(pid, g) {
			t.Errorf("process %d outlived its cgroup", pid)
		}
	}
}

// inGroup reports whether pid (if it is still there) is in g.
func inGroup(pid int, g *Group) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	return err == nil && strings.Contains(string(data), filepath.Base(g.dir()))
}

// An agent that restarts opens its parent again and finds its tasks'
// cgroups there, a task still running in its own.
func TestReopenedParentFindsItsTasks(t *testing.T) {
	p := openTestParent(t, ParentLimits(1, 256))
	g, err := p.NewGroup("web.1", TaskLimits(0.5, 64, 32))
	if err != nil {
		t.Fatal(err)
	}
	tk := startIn(t, g, "exec "+busybox+" sleep 300")

	again, err := OpenParent(p.name, ParentLimits(1, 256))
	if err != nil {
		t.Fatal(err)
	}
	if !samePaths(again.Paths(), p.Paths()) {
		t.Errorf("reopened parent at %+v, was %+v", again.Paths(), p.Paths())
	}
	if names, err := again.Children(); err != nil || len(names) != 1 || names[0] != "web.1" {
		t.Errorf("children = %v (%v), want [web.1]", names, err)
	}
	found := again.Child("web.1")
	if procs, err := found.Procs(); err != nil || len(procs) != 1 || procs[0] != tk.cmd.Process.Pid {
		t.Errorf("procs of the found cgroup = %v (%v), want [%d]", procs, err, tk.cmd.Process.Pid)
	}
	if u, err := found.Usage(); err != nil || u.MemLimitBytes != 64<<20 {
		t.Errorf("usage of the found cgroup = %+v (%v)", u, err)
	}
	if err := found.Destroy(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := tk.wait(t, 10*time.Second); err == nil {
		t.Error("the task was not killed")
	}
}

func samePaths(a, b Paths) bool {
	if a.V2 != b.V2 || len(a.V1) != len(b.V1) {
		return false
	}
	for c, d := range a.V1 {
		if b.V1[c] != d {
			return false
		}
	}
	return true
}

package agent

import (
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// startAndLeave runs a first agent that launches a long task, then stops
// without killing it, as an agent process that dies would. It returns the
// task's pid.
func startAndLeave(t *testing.T, env *testEnv, cfg Config, taskID string) int {
	t.Helper()
	cfg.KillTasksOnStop = false
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	if ack := env.launch(id, shellTask(taskID, "exec sleep 300")); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	env.master.waitStatus(t, taskID, events.TaskRunning)
	cp := checkpointOf(t, cfg, taskID)
	killSession(t, cp.Pid)
	a.stop(t)
	if !alive(cp.Pid, cp.StartTime) {
		t.Fatalf("task %s (pid %d) did not survive its agent", taskID, cp.Pid)
	}
	return cp.Pid
}

func TestReadoptRunningTask(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	pid := startAndLeave(t, env, cfg, "keep.1")
	regs := env.master.registerCount()

	cfg.NC = env.connect()
	b := env.start(env.newAgent(cfg))
	waitFor(t, 10*time.Second, "re-registration", func() bool { return env.master.registerCount() > regs })
	reg := env.master.lastRegister()
	want := []events.TaskReport{{TaskID: "keep.1", AppID: "/test", State: events.TaskRunning}}
	if reg.AgentID != "agent-1" || !slices.Equal(withoutStatistics(reg.Tasks), want) {
		t.Fatalf("registration = id %q tasks %v, want agent-1 with %v", reg.AgentID, reg.Tasks, want)
	}
	b.mu.Lock()
	adoptedPid := b.tasks["keep.1"].pid
	b.mu.Unlock()
	if adoptedPid != pid {
		t.Fatalf("adopted pid %d, want %d", adoptedPid, pid)
	}
	// Heartbeats report it too.
	waitFor(t, 5*time.Second, "heartbeat with the task", func() bool {
		env.master.mu.Lock()
		defer env.master.mu.Unlock()
		n := len(env.master.heartbeats)
		return n > 0 && slices.Equal(withoutStatistics(env.master.heartbeats[n-1].Tasks), want)
	})
	if !alive(pid, checkpointOf(t, cfg, "keep.1").StartTime) {
		t.Fatal("adopted task no longer runs")
	}

	// Killed behind the agent's back: reported failed, status unknown.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	upd := env.master.waitStatus(t, "keep.1", events.TaskFailed)
	if upd.Message != "exited while adopted (status unknown)" {
		t.Errorf("message = %q", upd.Message)
	}
	waitFor(t, 5*time.Second, "checkpoint removed", func() bool { return !checkpointExists(cfg, "keep.1") })
	if sandboxFile(cfg, "keep.1", "stdout") != "" || !sandboxExists(cfg, "keep.1") {
		t.Error("sandbox should stay after the checkpoint goes")
	}
}

func TestReadoptKill(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	pid := startAndLeave(t, env, cfg, "adoptkill.1")
	regs := env.master.registerCount()

	cfg.NC = env.connect()
	env.start(env.newAgent(cfg))
	waitFor(t, 10*time.Second, "re-registration", func() bool { return env.master.registerCount() > regs })
	if ack := env.kill("agent-1", events.KillRequest{TaskID: "adoptkill.1", KillGracePeriod: time.Second}); ack.Error != "" {
		t.Fatalf("kill: %s", ack.Error)
	}
	env.master.waitStatus(t, "adoptkill.1", events.TaskKilled)
	if m := sessionMembers(pid); len(m) != 0 {
		t.Errorf("processes left: %v", m)
	}
}

func TestTaskExitedWhileAgentDown(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	pid := startAndLeave(t, env, cfg, "gone.1")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}

	cfg.NC = env.connect()
	b := env.start(env.newAgent(cfg))
	upd := env.master.waitStatus(t, "gone.1", events.TaskFailed)
	if upd.Message != "task exited while agent was down" || upd.AgentID != "agent-1" {
		t.Errorf("update = %+v", upd)
	}
	// The ended task may be reported, but only with its final state.
	for _, r := range env.master.lastRegister().Tasks {
		if r.TaskID == "gone.1" && (r.State != events.TaskFailed || r.Message != "task exited while agent was down") {
			t.Errorf("registration reports %+v, want gone.1 only as TASK_FAILED", r)
		}
	}
	waitFor(t, 5*time.Second, "checkpoint removed", func() bool { return !checkpointExists(cfg, "gone.1") })
	_ = b
}

func TestRecycledPidNotAdopted(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	pid := startAndLeave(t, env, cfg, "recycled.1")
	// Pretend the pid was recycled: same pid, another start time.
	dir := filepath.Dir(checkpointPath(cfg, "recycled.1"))
	cp := checkpointOf(t, cfg, "recycled.1")
	cp.StartTime++
	if err := writeCheckpoint(dir, cp); err != nil {
		t.Fatal(err)
	}
	// Another process would not be in the task's cgroup either.
	moveToOwnCgroup(t, pid)

	cfg.NC = env.connect()
	env.start(env.newAgent(cfg))
	env.master.waitStatus(t, "recycled.1", events.TaskFailed)
	p, err := readProc(pid)
	if err != nil || p.State == 'Z' {
		t.Fatalf("the process with the recycled pid was touched: %v %c", err, p.State)
	}
}

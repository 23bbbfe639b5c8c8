package agent

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// waitReady waits for a task to write its "ready" file: its traps are set.
func waitReady(t *testing.T, cfg Config, taskID string) {
	t.Helper()
	waitFor(t, 10*time.Second, taskID+" ready", func() bool { return sandboxFile(cfg, taskID, "ready") != "" })
}

func TestKillTermTrapped(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)

	req := shellTask("trap.1", `trap 'echo got TERM; exit 0' TERM; echo ok > ready; while :; do sleep 0.05; done`)
	req.KillGracePeriod = 20 * time.Second
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	waitReady(t, cfg, "trap.1")
	start := time.Now()
	if ack := env.kill(id, events.KillRequest{TaskID: "trap.1"}); ack.Error != "" {
		t.Fatalf("kill: %s", ack.Error)
	}
	env.master.waitStatus(t, "trap.1", events.TaskKilled)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("kill took %v: SIGTERM should have done it", took)
	}
	want := []events.TaskState{events.TaskRunning, events.TaskKilling, events.TaskKilled}
	if got := env.master.states("trap.1"); !slices.Equal(got, want) {
		t.Errorf("states = %v, want %v", got, want)
	}
	if out := sandboxFile(cfg, "trap.1", "stdout"); !strings.Contains(out, "got TERM") {
		t.Errorf("stdout = %q: the trap did not run", out)
	}
	// A second kill of a finished task is not an error.
	if ack := env.kill(id, events.KillRequest{TaskID: "trap.1"}); ack.Error != "" && ack.Error != "unknown task trap.1" {
		t.Errorf("second kill: %s", ack.Error)
	}
}

func TestKillTermIgnored(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)

	req := shellTask("stubborn.1", `trap '' TERM; echo ok > ready; while :; do sleep 0.05; done`)
	req.KillGracePeriod = 20 * time.Second // the kill request's own grace wins
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	waitReady(t, cfg, "stubborn.1")
	pid := checkpointOf(t, cfg, "stubborn.1").Pid
	grace := 300 * time.Millisecond
	start := time.Now()
	if ack := env.kill(id, events.KillRequest{TaskID: "stubborn.1", KillGracePeriod: grace}); ack.Error != "" {
		t.Fatalf("kill: %s", ack.Error)
	}
	upd := env.master.waitStatus(t, "stubborn.1", events.TaskKilled)
	if took := time.Since(start); took < grace {
		t.Errorf("killed after %v, before the %v grace period", took, grace)
	}
	if !strings.Contains(upd.Message, "signal 9") {
		t.Errorf("message = %q, want SIGKILL", upd.Message)
	}
	if m := sessionMembers(pid); len(m) != 0 {
		t.Errorf("processes left in the task's session: %v", m)
	}
}

func TestKillTasksOnStop(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)

	// A leader and a background child, both ignoring SIGTERM.
	req := shellTask("stop.1", `trap '' TERM; sleep 300 & echo ok > ready; exec sleep 301`)
	req.KillGracePeriod = 200 * time.Millisecond
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	waitReady(t, cfg, "stop.1")
	pid := checkpointOf(t, cfg, "stop.1").Pid
	killSession(t, pid)
	waitFor(t, 5*time.Second, "two processes in the session", func() bool { return len(sessionMembers(pid)) == 2 })

	a.stop(t)
	if m := sessionMembers(pid); len(m) != 0 {
		t.Fatalf("processes left after stop: %v", m)
	}
	if got := env.master.states("stop.1"); !slices.Contains(got, events.TaskKilled) {
		t.Errorf("states = %v, want TASK_KILLED reported before Run returned", got)
	}
}

package agent

import (
	"fmt"
	"syscall"
	"time"

	"github.com/atollhq/atoll/events"
)

// kill starts killing a task: TASK_KILLING, SIGTERM to its process group,
// SIGKILL to the group after the grace period.
func (a *Agent) kill(req events.KillRequest) error {
	a.mu.Lock()
	t, ok := a.tasks[req.TaskID]
	if !ok {
		a.mu.Unlock()
		return &events.CodedError{Code: events.AckUnknownTask, Err: fmt.Errorf("unknown task %s", req.TaskID)}
	}
	if t.exited || t.killing {
		a.mu.Unlock()
		return nil // already over, or on its way
	}
	a.beginKillLocked(t, req.KillGracePeriod)
	if t.pid <= 0 && t.cancelStart != nil {
		// Not running yet (its image still being pulled): give the
		// start up; the task ends as killed.
		t.cancelStart()
	}
	a.mu.Unlock()
	a.signal(t, syscall.SIGTERM)
	return nil
}

// beginKillLocked marks t as being killed and arms the SIGKILL. a.mu held.
func (a *Agent) beginKillLocked(t *task, grace time.Duration) {
	if grace <= 0 {
		grace = t.launch.KillGracePeriod
	}
	if grace <= 0 {
		grace = defaultKillGrace
	}
	t.killing, t.grace, t.state = true, grace, events.TaskKilling
	// No health results for a task on its way out: the master would
	// only count a dying task's failures.
	t.stopHealthLocked()
	a.sendUpdate(t.id, events.TaskKilling, "", nil)
	a.log.Info("killing task", "task", t.id, "pid", t.pid, "grace", grace)
	wctx := a.wctx
	a.goRun(func() {
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-t.done:
		case <-wctx.Done():
		case <-timer.C:
			a.log.Info("task outlived its grace period, sending SIGKILL", "task", t.id)
			a.signal(t, syscall.SIGKILL)
		}
	})
}

// signal sends sig to the task's process group, if the task still runs.
func (a *Agent) signal(t *task, sig syscall.Signal) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.pid <= 0 || t.exited || t.ending {
		return
	}
	if t.launch.Container != nil {
		// The runtime signals the container's processes (runc kill):
		// outside the lock, as it takes a while.
		a.mu.Unlock()
		a.signalContainer(t.id, sig)
		a.mu.Lock()
		return
	}
	// Our own child keeps its pid until we reap it (under a.mu), so the
	// group id cannot be recycled. An adopted process is checked by its
	// start time: it holds the group id while it lives.
	if t.adopted && !alive(t.pid, t.startTime) {
		return
	}
	if err := syscall.Kill(-t.pid, sig); err != nil {
		a.log.Debug("signal task", "task", t.id, "pid", t.pid, "signal", sig, "err", err)
	}
}

// killAllAndWait kills every running task and waits until they are gone
// (at most their grace period plus stopWait).
func (a *Agent) killAllAndWait() {
	a.mu.Lock()
	var running []*task
	longest := time.Duration(0)
	for _, t := range a.tasks {
		if t.pid <= 0 || t.exited {
			continue
		}
		if !t.killing {
			a.beginKillLocked(t, 0)
		}
		longest = max(longest, t.grace)
		running = append(running, t)
	}
	a.mu.Unlock()
	for _, t := range running {
		a.signal(t, syscall.SIGTERM)
	}
	deadline := time.NewTimer(longest + a.stopWait)
	defer deadline.Stop()
	for _, t := range running {
		select {
		case <-t.done:
		case <-deadline.C:
			a.log.Error("tasks still running after SIGKILL; giving up", "task", t.id, "pid", t.pid)
			return
		}
	}
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/atollhq/atoll/events"
)

// watchTasks notices tasks that ended: our children on SIGCHLD (and on
// every tick, in case a signal was coalesced), adopted processes by
// polling /proc; and, on every tick, tasks in whose cgroup the OOM killer
// struck.
func (a *Agent) watchTasks(ctx context.Context) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	tick := time.NewTicker(a.adoptedPoll)
	defer tick.Stop()
	for {
		a.checkTasks()
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		case <-tick.C:
			a.enforceMemoryLimits()
		}
	}
}

func (a *Agent) checkTasks() {
	a.mu.Lock()
	var live []*task
	for _, t := range a.tasks {
		if t.pid > 0 && !t.exited && !t.ending {
			live = append(live, t)
		}
	}
	a.mu.Unlock()
	for _, t := range live {
		if t.launch.Container != nil {
			if t.adopted && !alive(t.pid, t.startTime) {
				a.endContainer(t, false)
			} else if !t.adopted && childExited(t.pid) {
				a.endContainer(t, true)
			}
			continue
		}
		if t.adopted {
			if !alive(t.pid, t.startTime) {
				a.adoptedExited(t)
			}
		} else if childExited(t.pid) {
			a.reap(t)
		}
	}
}

// childExited reports whether our child pid has exited, without reaping
// it: the zombie keeps the pid (and so the process group id) reserved.
func childExited(pid int) bool {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return true // ECHILD: someone else reaped it
		}
		// Linux sets si_signo to SIGCHLD when it reports a child, 0 when
		// none is ready.
		return info.Signo == int32(syscall.SIGCHLD)
	}
}

// reap collects an exited child, reports how it ended and removes its
// cgroup.
func (a *Agent) reap(t *task) {
	if a.reapLocked(t) {
		a.destroyCgroup(t.id, t.cgroup)
	}
}

// reapLocked is reap up to the report: the cgroup, read for an OOM kill,
// stays until the caller removes it outside the lock. It reports whether
// it reaped.
func (a *Agent) reapLocked(t *task) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.exited {
		return false
	}
	// A task ends with its whole process group, as a Mesos container does.
	_ = syscall.Kill(-t.pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	var err error
	for {
		_, err = syscall.Wait4(t.pid, &ws, 0, nil)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	state, msg := exitState(ws, err, t.killing)
	end := endOf(t.cgroup, state, msg, t.killing)
	a.log.Info("task ended", "task", t.id, "pid", t.pid, "state", end.state, "message", end.msg)
	a.finishLocked(t, end)
	return true
}

// adoptedExited reports an adopted process that went away: it is not our
// child, so its exit status is unknown (its cgroup still tells an OOM
// kill).
func (a *Agent) adoptedExited(t *task) {
	a.mu.Lock()
	if t.exited {
		a.mu.Unlock()
		return
	}
	state := events.TaskFailed
	if t.killing {
		state = events.TaskKilled
	}
	end := endOf(t.cgroup, state, "exited while adopted (status unknown)", t.killing)
	a.log.Info("adopted task ended", "task", t.id, "pid", t.pid, "state", end.state)
	a.finishLocked(t, end)
	a.mu.Unlock()
	a.destroyCgroup(t.id, t.cgroup)
}

func exitState(ws syscall.WaitStatus, err error, killing bool) (events.TaskState, string) {
	var msg string
	switch {
	case err != nil:
		msg = "exited (status unknown: " + err.Error() + ")"
	case ws.Exited():
		msg = fmt.Sprintf("command exited with status %d", ws.ExitStatus())
	case ws.Signaled():
		msg = fmt.Sprintf("command terminated by signal %d (%s)", int(ws.Signal()), ws.Signal())
	default:
		msg = fmt.Sprintf("command ended with wait status %#x", uint32(ws))
	}
	switch {
	case killing:
		return events.TaskKilled, msg
	case err == nil && ws.Exited() && ws.ExitStatus() == 0:
		return events.TaskFinished, msg
	}
	return events.TaskFailed, msg
}

// finishLocked records a task's end: the final status is checkpointed (a
// restarted agent sends it again) and queued; once acked the checkpoint
// goes, the sandbox stays. a.mu held.
func (a *Agent) finishLocked(t *task, end ending) {
	t.exited, t.state, t.message = true, end.state, end.msg
	t.stopHealthLocked()
	// The sandbox's garbage collection delay counts from now (gc.go).
	now := time.Now()
	if err := os.Chtimes(a.taskDir(t.id), now, now); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("cannot mark the sandbox's end", "task", t.id, "err", err)
	}
	upd := events.StatusUpdate{TaskID: t.id, State: end.state, Message: end.msg, Reason: end.reason, Time: time.Now().UTC()}
	dir := a.checkpointDir(t.id)
	cp := checkpoint{Launch: t.launch, RunAs: t.runAs, Pid: t.pid, StartTime: t.startTime, StartedAt: t.startedAt, BootID: bootID(), Final: &upd}
	if t.cgroup != nil {
		paths := t.cgroup.Paths()
		cp.Cgroup = &paths
	}
	if err := writeCheckpoint(dir, cp); err != nil {
		a.log.Error("cannot checkpoint final status", "task", t.id, "err", err)
	}
	a.status.push(statusItem{upd: upd, onAck: func() { a.forget(t) }})
	close(t.done) // after the push: stop() waits for done, then for the queue
}

// forget drops a task whose final status the master acked.
func (a *Agent) forget(t *task) {
	a.mu.Lock()
	if a.tasks[t.id] == t {
		delete(a.tasks, t.id)
	}
	a.mu.Unlock()
	if err := removeCheckpoint(a.checkpointDir(t.id)); err != nil {
		a.log.Error("cannot remove checkpoint", "task", t.id, "err", err)
	}
}

package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"syscall"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/cgroup"
)

// Isolation says how an agent holds its tasks to their resources.
type Isolation string

const (
	// IsolationCgroups puts every task in a cgroup of its own under the
	// agent's parent cgroup: the default.
	IsolationCgroups Isolation = "cgroups"
	// IsolationNone runs tasks as plain processes, unlimited (an agent
	// that cannot manage cgroups: not root, no cgroup file system).
	IsolationNone Isolation = "none"
)

// ParseIsolation reads an --isolation value.
func ParseIsolation(s string) (Isolation, error) {
	switch Isolation(s) {
	case "", IsolationCgroups:
		return IsolationCgroups, nil
	case IsolationNone:
		return IsolationNone, nil
	}
	return "", fmt.Errorf("isolation %q: want cgroups or none", s)
}

// DefaultTaskPidsLimit is how many processes and threads a task may have
// unless the agent is told otherwise: enough for any service, and a fork
// bomb stops there.
const DefaultTaskPidsLimit = 4096

// destroyTimeout bounds the wait for a cgroup's last processes to die.
const destroyTimeout = 10 * time.Second

// DefaultCgroupParent is the agent's parent cgroup unless told otherwise:
// named after the agent's node and its work dir (which one agent at a
// time holds), so that no two agents share one, even with a hostname in
// common (test clusters on one machine): an agent removes the cgroups in
// its parent that are none of its tasks'.
func DefaultCgroupParent(hostname, workDir string) string {
	sum := sha256.Sum256([]byte(workDir))
	return "atoll-" + events.NodeToken(hostname) + "-" + hex.EncodeToString(sum[:4])
}

// openIsolation makes the agent's parent cgroup, limited to the
// resources it advertises. Nil with IsolationNone.
func openIsolation(cfg Config) (*cgroup.Parent, error) {
	if cfg.Isolation == IsolationNone {
		return nil, nil
	}
	name := cfg.CgroupParent
	if name == "" {
		name = DefaultCgroupParent(cfg.Hostname, cfg.WorkDir)
	}
	p, err := cgroup.OpenParent(name, cgroup.ParentLimits(cfg.Resources.Cpus, cfg.Resources.Mem))
	if err != nil {
		return nil, fmt.Errorf("isolation: %w (an agent isolates tasks with cgroups as root; --isolation=none runs them without limits)", err)
	}
	return p, nil
}

// taskLimits are the limits of a task launched with req.
func (a *Agent) taskLimits(req events.LaunchRequest) cgroup.Limits {
	pids := a.cfg.TaskPidsLimit
	if req.Limits == nil {
		a.log.Warn("launch request without limits (a leader from before them): the task gets no CPU or memory limit",
			"task", req.Task.ID)
		return cgroup.Limits{Pids: max(pids, 0)}
	}
	return cgroup.TaskLimits(req.Limits.Cpus, req.Limits.Mem, pids)
}

// ending is how a task whose process ended ended.
type ending struct {
	state  events.TaskState
	msg    string
	reason string // Mesos's TaskStatus reason, where known
}

// endOf is how a task ended, given its process's end: when its cgroup
// says the kernel's OOM killer killed in it, Mesos's memory limitation
// (REASON_CONTAINER_LIMITATION_MEMORY), a failure whatever the exit
// status. A task being killed stays killed.
func endOf(g *cgroup.Group, state events.TaskState, msg string, killing bool) ending {
	if g != nil && !killing {
		if oom, ok := g.MemoryLimitExceeded(); ok {
			return ending{state: events.TaskFailed, msg: oom, reason: events.ReasonMemoryLimit}
		}
	}
	return ending{state: state, msg: msg}
}

// enforceMemoryLimits ends the running tasks in whose cgroup the kernel's
// OOM killer killed a process, as Mesos destroys a container at its OOM:
// a task whose main process survived (a worker killed, its master left)
// would otherwise run on without part of itself. Its end is then reported
// as the memory limitation (endMessage).
func (a *Agent) enforceMemoryLimits() {
	a.mu.Lock()
	var live []*task
	for _, t := range a.tasks {
		if t.pid > 0 && !t.exited && !t.killing && t.cgroup != nil {
			live = append(live, t)
		}
	}
	a.mu.Unlock()
	for _, t := range live {
		if n, err := t.cgroup.OOMKills(); err != nil || n == 0 {
			continue
		}
		a.log.Info("the OOM killer struck in the task's cgroup: ending the task", "task", t.id)
		a.signal(t, syscall.SIGKILL)
	}
}

// destroyCgroup kills what is left in a task's cgroup and removes it. A
// cgroup that will not go stays for the sweep at the next start.
func (a *Agent) destroyCgroup(id string, g *cgroup.Group) {
	if g == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), destroyTimeout)
	defer cancel()
	if err := g.Destroy(ctx); err != nil {
		a.log.Error("cannot remove the task's cgroup", "task", id, "err", err)
	}
}

// sweepCgroups removes the cgroups under the parent that belong to no
// task the agent knows (left by a crash, or by a task whose checkpoint is
// gone), killing what runs in them. Called at start, a.mu held.
func (a *Agent) sweepCgroupsLocked() {
	if a.cgroups == nil {
		return
	}
	names, err := a.cgroups.Children()
	if err != nil {
		a.log.Error("cannot list task cgroups", "err", err)
		return
	}
	for _, name := range names {
		if _, ok := a.tasks[name]; ok {
			continue
		}
		a.log.Info("removing the cgroup of an unknown task", "cgroup", name)
		a.destroyCgroup(name, a.cgroups.Child(name))
	}
}

// statistics reads a task's usage from its cgroup; nil if it has none or
// it cannot be read.
func statistics(g *cgroup.Group, now time.Time) *events.ResourceStatistics {
	if g == nil {
		return nil
	}
	u, err := g.Usage()
	if err != nil {
		return nil // gone: the task just ended
	}
	return &events.ResourceStatistics{
		Timestamp:             float64(now.UnixNano()) / 1e9,
		CpusLimit:             u.CPULimit,
		CpusUserTimeSecs:      u.CPUUserSecs,
		CpusSystemTimeSecs:    u.CPUSystemSecs,
		CpusNrPeriods:         u.NrPeriods,
		CpusNrThrottled:       u.NrThrottled,
		CpusThrottledTimeSecs: u.ThrottledSecs,
		MemTotalBytes:         u.MemTotalBytes,
		MemLimitBytes:         u.MemLimitBytes,
	}
}

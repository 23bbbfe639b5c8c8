package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/cgroup"
	"github.com/atollhq/atoll/internal/fsperm"
)

const checkpointFile = "checkpoint.json"

// checkpoint is what a restarted agent needs to find a task again:
// WORK_DIR/state/tasks/TASK_ID/checkpoint.json, where no task can read it
// (it holds the task's env). Pid alone could be recycled; pid plus its
// start time (and the boot) names one process.
type checkpoint struct {
	Launch events.LaunchRequest `json:"launch"`
	// RunAs is who the task runs as; nil for a task started before tasks
	// ran as users (it runs as the agent).
	RunAs     *identity `json:"runAs,omitempty"`
	Pid       int       `json:"pid"`
	StartTime uint64    `json:"startTime"` // /proc/<pid>/stat field 22
	BootID    string    `json:"bootId,omitempty"`
	// StartedAt is when the task started: a re-adopted task's health
	// checks count their grace period from it, not from the adoption.
	StartedAt time.Time `json:"startedAt,omitzero"`
	// Final is the terminal status not yet acked by the master.
	Final *events.StatusUpdate `json:"final,omitempty"`
	// Cgroup is where the task's cgroup is; nil for a task run without
	// isolation. Kept as paths: a restarted agent may itself sit elsewhere.
	Cgroup *cgroup.Paths `json:"cgroup,omitempty"`
	// IPAddresses are a bridged container's addresses.
	IPAddresses []events.IPAddress `json:"ipAddresses,omitempty"`
}

// writeCheckpoint stores cp in dir; file and folder are private, as env
// may hold secrets.
func writeCheckpoint(dir string, cp checkpoint) error {
	data, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := fsperm.WriteAtomic(filepath.Join(dir, checkpointFile), data, 0o600); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

func readCheckpoint(dir string) (checkpoint, error) {
	var cp checkpoint
	data, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if err != nil {
		return cp, err
	}
	if err := json.Unmarshal(data, &cp); err != nil {
		return cp, fmt.Errorf("decode %s: %w", filepath.Join(dir, checkpointFile), err)
	}
	return cp, nil
}

// removeCheckpoint removes a checkpoint and its folder.
func removeCheckpoint(dir string) error {
	return os.RemoveAll(dir)
}

// checkpointDir is where a task's checkpoint lives.
func (a *Agent) checkpointDir(id string) string {
	return filepath.Join(a.cfg.WorkDir, stateDir, tasksDir, id)
}

// moveOldCheckpoints moves the checkpoints an agent of the old layout left
// in the sandboxes (readable by the tasks, once they run as users) to the
// agent's private state folder. Where both exist the new one wins.
func (a *Agent) moveOldCheckpoints() {
	root := filepath.Join(a.cfg.WorkDir, tasksDir)
	entries, err := os.ReadDir(root)
	if err != nil {
		a.log.Error("cannot read sandboxes", "dir", root, "err", err)
		return
	}
	for _, e := range entries {
		old := filepath.Join(root, e.Name(), checkpointFile)
		if !e.IsDir() || checkTaskID(e.Name()) != nil {
			continue
		}
		data, err := os.ReadFile(old)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			a.log.Error("cannot read old checkpoint", "file", old, "err", err)
			continue
		}
		dir := a.checkpointDir(e.Name())
		if _, err := os.Stat(filepath.Join(dir, checkpointFile)); errors.Is(err, fs.ErrNotExist) {
			err = os.MkdirAll(dir, 0o700)
			if err == nil {
				err = fsperm.WriteAtomic(filepath.Join(dir, checkpointFile), data, 0o600)
			}
			if err != nil {
				a.log.Error("cannot move old checkpoint", "file", old, "err", err)
				continue
			}
			a.log.Info("moved checkpoint out of the sandbox", "task", e.Name(), "to", dir)
		}
		if err := os.Remove(old); err != nil {
			a.log.Error("cannot remove old checkpoint", "file", old, "err", err)
		}
	}
}

// recoverTasks reads the checkpoints an earlier agent process left: live
// processes are adopted, final statuses not yet acked are sent again, and
// tasks whose process went away while no agent watched are reported
// failed.
func (a *Agent) recoverTasks() {
	a.moveOldCheckpoints()
	root := filepath.Join(a.cfg.WorkDir, stateDir, tasksDir)
	entries, err := os.ReadDir(root)
	if err != nil {
		a.log.Error("cannot read task checkpoints", "dir", root, "err", err)
		return
	}
	boot := bootID()
	var finals []statusItem
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		cp, err := readCheckpoint(dir)
		if errors.Is(err, fs.ErrNotExist) {
			_ = os.Remove(dir) // left by a crash before its checkpoint
			continue
		}
		if err != nil {
			a.log.Error("ignoring unreadable checkpoint", "dir", dir, "err", err)
			continue
		}
		id := cp.Launch.Task.ID
		if id != e.Name() {
			a.log.Error("ignoring checkpoint of another task", "dir", dir, "task", id)
			continue
		}
		t := &task{
			id: id, launch: cp.Launch, runAs: cp.RunAs, pid: cp.Pid, startTime: cp.StartTime, startedAt: cp.StartedAt,
			adopted: true, done: make(chan struct{}),
		}
		if cp.Cgroup != nil {
			t.cgroup = cgroup.LoadGroup(*cp.Cgroup)
		}
		if t.startedAt.IsZero() {
			// A checkpoint from before StartedAt: grant a full grace
			// period rather than judge the task at once.
			t.startedAt = time.Now().UTC()
		}
		a.tasks[id] = t
		sameBoot := cp.BootID == "" || boot == "" || cp.BootID == boot
		switch {
		case cp.Final != nil:
			a.log.Info("resending final status", "task", id, "state", cp.Final.State)
		case sameBoot && alive(cp.Pid, cp.StartTime):
			t.state = events.TaskRunning
			a.log.Info("adopted task", "task", id, "pid", cp.Pid)
			if cp.Launch.Container != nil {
				a.adoptContainer(t)
			}
			// Health records are not checkpointed: as after a
			// Marathon failover, checks start over, grace counted
			// from the task's start.
			a.startHealthLocked(t)
			continue
		default:
			a.log.Info("task exited while agent was down", "task", id, "pid", cp.Pid)
			var end ending
			if cp.Launch.Container != nil && a.ctrs.runtimeErr == nil {
				end = a.containerEnding(t, -1, false, false)
				end.msg += " while the agent was down"
			} else {
				end = endOf(t.cgroup, events.TaskFailed, "task exited while agent was down", false)
			}
			cp.Final = &events.StatusUpdate{TaskID: id, State: end.state, Message: end.msg, Reason: end.reason, Time: time.Now().UTC()}
			if err := writeCheckpoint(dir, cp); err != nil {
				a.log.Error("cannot checkpoint final status", "task", id, "err", err)
			}
		}
		t.state, t.message, t.exited = cp.Final.State, cp.Final.Message, true
		a.destroyCgroup(id, t.cgroup)
		close(t.done)
		finals = append(finals, statusItem{upd: *cp.Final, onAck: func() { a.forget(t) }})
	}
	a.sweepContainersLocked()
	a.sweepCgroupsLocked()
	slices.SortFunc(finals, func(x, y statusItem) int { return x.upd.Time.Compare(y.upd.Time) })
	for _, it := range finals {
		a.status.push(it)
	}
}

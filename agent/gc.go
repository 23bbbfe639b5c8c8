package agent

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/atollhq/atoll/agent/imagestore"
)

// Garbage collection, as Mesos's agent --gc_delay: a finished task's
// sandbox stays for SandboxGCDelay after the task ended (the agent marks
// the sandbox's modification time then) or its logs were last written,
// whichever is later (its logs, for a look at why it ended), and so do a
// container's own writes (its root filesystem's upper layer); then they
// go. Images no task has used for
// the same delay go too (the image store's GC).
//
// The default is an hour, not Mesos's week: Mesos shortens its delay as
// the disk fills (--gc_disk_headroom), which atoll does not, and an app
// that fails and is relaunched every few seconds leaves a sandbox each
// time.

// DefaultSandboxGCDelay is SandboxGCDelay unless told otherwise.
const DefaultSandboxGCDelay = time.Hour

// collectGarbage runs the sandbox and image collections every gcInterval
// until ctx ends.
func (a *Agent) collectGarbage(ctx context.Context) {
	delay := a.cfg.SandboxGCDelay
	if delay < 0 {
		return
	}
	interval := min(a.gcInterval, max(delay/4, time.Second))
	a.goRun(func() {
		a.ctrs.driver.Images.RunGC(ctx, interval, delay, func(_ imagestore.GCResult, err error) {
			if err != nil {
				a.log.Warn("image garbage collection", "err", err)
			}
		})
	})
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		a.collectSandboxes(time.Now().Add(-delay))
		if ids, err := a.ctrs.driver.PurgeFinished(delay); err != nil {
			a.log.Warn("cannot remove finished containers' files", "err", err)
		} else if len(ids) > 0 {
			a.log.Info("removed finished containers' files", "tasks", ids)
		}
	}
}

// collectSandboxes removes the sandboxes of tasks the agent no longer
// has (their end acked, their checkpoint gone) last written before
// cutoff.
func (a *Agent) collectSandboxes(cutoff time.Time) {
	root := filepath.Join(a.cfg.WorkDir, tasksDir)
	entries, err := os.ReadDir(root)
	if err != nil {
		a.log.Warn("cannot read sandboxes", "err", err)
		return
	}
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || checkTaskID(id) != nil {
			continue
		}
		a.mu.Lock()
		_, known := a.tasks[id]
		a.mu.Unlock()
		if known {
			continue
		}
		if _, err := os.Stat(filepath.Join(a.checkpointDir(id), checkpointFile)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		dir := filepath.Join(root, id)
		if lastWrite(dir).After(cutoff) {
			continue
		}
		// RemoveAll removes links, never what they point to.
		if err := os.RemoveAll(dir); err != nil {
			a.log.Warn("cannot remove a sandbox", "task", id, "err", err)
			continue
		}
		a.log.Info("removed the sandbox of a finished task", "task", id)
	}
}

// lastWrite is when a sandbox or its logs last changed.
func lastWrite(dir string) time.Time {
	var last time.Time
	for _, name := range []string{"", "stdout", "stderr", "stdout.1", "stderr.1"} {
		if fi, err := os.Lstat(filepath.Join(dir, name)); err == nil && fi.ModTime().After(last) {
			last = fi.ModTime()
		}
	}
	return last
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Log rotation. A task writes its stdout and stderr straight into its
// sandbox files (opened O_APPEND, by the agent for the task); every
// logCheckInterval the agent rotates a file past LogMaxSize: its head is
// copied to stdout.1 (the one older file kept, replaced) and then cut out
// of the file in place with fallocate's FALLOC_FL_COLLAPSE_RANGE, so that
// what the task writes meanwhile stays, after it, and nothing is lost.
// The cut is at a file system block boundary (the call's rule): stdout.1
// holds whole blocks and up to a block of the older output stays at the
// start of stdout. On a file system without the call (tmpfs, some
// overlays) the agent falls back to logrotate's copytruncate, where a
// write landing between the last copy and the truncation is lost.
// Why this design rather than Mesos's logger process per task: it needs
// no process per task (memory per container matters), and nothing of it
// lives in the agent process, so logs go on being written and bounded
// across an agent restart and re-adoption. What it costs: a file may
// exceed the limit by what the task writes in one interval.

// DefaultLogMaxSize is the size a task's stdout or stderr is rotated at.
const DefaultLogMaxSize = 10 << 20

// rotateLogs checks the running tasks' logs every logCheckInterval until
// ctx ends.
func (a *Agent) rotateLogs(ctx context.Context) {
	if a.cfg.LogMaxSize < 0 {
		return
	}
	tick := time.NewTicker(a.logCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		a.mu.Lock()
		var ids []string
		for id, t := range a.tasks {
			if !t.exited {
				ids = append(ids, id)
			}
		}
		a.mu.Unlock()
		for _, id := range ids {
			for _, name := range []string{"stdout", "stderr"} {
				if _, err := rotateLog(filepath.Join(a.taskDir(id), name), a.cfg.LogMaxSize); err != nil {
					a.log.Warn("cannot rotate a task's log", "task", id, "file", name, "err", err)
				}
			}
		}
	}
}

// rotateLog moves path's older content to path.1, if path is larger
// than limit, and reports whether it did. The sandbox is the task's: path
// is opened without following a link, and left alone unless it is a
// regular file with one name (a hard link to another file is not the
// task's log); path.1 is made anew, owned as path is, and renamed into
// place.
func rotateLog(path string, limit int64) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || !ok || st.Nlink != 1 {
		return false, fmt.Errorf("%s is not a regular file with one name: left alone", path)
	}
	if fi.Size() <= limit {
		return false, nil
	}
	tmp := path + ".1.tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, fi.Mode().Perm())
	if err != nil {
		return false, err
	}
	err = out.Chown(int(st.Uid), int(st.Gid))
	if err == nil {
		err = moveHead(f, out, fi.Size(), int64(st.Blksize))
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path+".1")
	}
	if err != nil {
		_ = os.Remove(tmp)
		return false, fmt.Errorf("rotate %s: %w", path, err)
	}
	return true, nil
}

// moveHead copies f's head to out and removes it from f: the whole blocks
// before size's last byte, collapsed out of f in place (writes appended
// meanwhile stay); where the file system cannot, all of f, truncated
// after (copytruncate).
func moveHead(f, out *os.File, size, block int64) error {
	if block > 0 {
		if head := (size - 1) / block * block; head > 0 {
			if _, err := io.Copy(out, io.NewSectionReader(f, 0, head)); err != nil {
				return err
			}
			err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, head)
			if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) {
				return err // nil: done
			}
			// Not on this file system: copytruncate, from the start.
			if err := out.Truncate(0); err != nil {
				return err
			}
			if _, err := out.Seek(0, io.SeekStart); err != nil {
				return err
			}
		}
	}
	var copied int64
	// Copy, then once more what was written meanwhile: the window for a
	// lost write is the second copy's.
	for range 2 {
		n, err := io.Copy(out, io.NewSectionReader(f, copied, 1<<62))
		if err != nil {
			return err
		}
		copied += n
	}
	return f.Truncate(0)
}

// ParseLogSize reads a --log-max-size: bytes, or a number with KB, MB or
// GB (powers of 1024, as Mesos's Bytes); negative turns rotation off.
func ParseLogSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	unit := int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, unit = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("log size %q: want bytes, or a number with KB, MB or GB (negative: no rotation)", s)
	}
	return n * unit, nil
}

package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// canEnter checks that id can enter dir: search permission on dir and on
// every folder above it. The kernel decides, not a reading of mode bits: a
// thread of the agent's takes id's filesystem credentials (which drops
// root's override of permissions) and opens the path. With id nil the
// check runs with the agent's own credentials. The error names the first
// folder that stops id.
func canEnter(dir string, id *identity) error {
	dir = filepath.Clean(dir)
	var err error
	if id == nil {
		err = firstBlocked(dir)
	} else {
		res := make(chan error, 1)
		go func() {
			// Never unlocked: the thread, with its changed
			// credentials, ends with this goroutine.
			runtime.LockOSThread()
			if err := takeFSCredentials(*id); err != nil {
				res <- fmt.Errorf("check access as user %s: %w", id, err)
				return
			}
			res <- firstBlocked(dir)
		}()
		err = <-res
	}
	var b *blockedError
	if errors.As(err, &b) {
		who := "the agent"
		if id != nil {
			who = "user " + id.String()
		}
		return fmt.Errorf("%s is not reachable by %s: %s", dir, who, b.describe())
	}
	return err
}

// takeFSCredentials makes the calling thread's file access checks those of
// id: groups, fsgid, fsuid. These are per-thread in Linux and the x/sys
// calls are raw, so only this thread changes.
func takeFSCredentials(id identity) error {
	gids := make([]int, len(id.Groups))
	for i, g := range id.Groups {
		gids[i] = int(g)
	}
	if err := unix.Setgroups(gids); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	// setfsuid and setfsgid report no errors: ask back (-1 changes
	// nothing and returns the current value).
	_, _ = unix.SetfsgidRetGid(int(id.GID))
	if got, _ := unix.SetfsgidRetGid(-1); got != int(id.GID) {
		return fmt.Errorf("setfsgid %d: still %d", id.GID, got)
	}
	_, _ = unix.SetfsuidRetUid(int(id.UID))
	if got, _ := unix.SetfsuidRetUid(-1); got != int(id.UID) {
		return fmt.Errorf("setfsuid %d: still %d", id.UID, got)
	}
	return nil
}

// blockedError says which folder could not be entered.
type blockedError struct {
	dir string
	err error
}

func (b *blockedError) Error() string { return b.dir + ": " + b.err.Error() }

// describe says why, with the folder's owner and mode when it can tell.
func (b *blockedError) describe() string {
	what := "no search permission on " + b.dir
	if !errors.Is(b.err, syscall.EACCES) {
		what = "cannot enter " + b.dir + ": " + b.err.Error()
	}
	var st syscall.Stat_t
	if syscall.Stat(b.dir, &st) == nil {
		what += fmt.Sprintf(" (mode %v, owner uid %d, gid %d)", os.FileMode(st.Mode&0o777)|os.ModeDir, st.Uid, st.Gid)
	}
	return what
}

// firstBlocked enters dir; if that fails it tries each folder from the
// root down and reports the first one that cannot be entered.
func firstBlocked(dir string) error {
	if enter(dir) == nil {
		return nil
	}
	p := "/"
	for _, part := range strings.Split(strings.TrimPrefix(dir, "/"), "/") {
		p = filepath.Join(p, part)
		if err := enter(p); err != nil {
			return &blockedError{dir: p, err: err}
		}
	}
	if err := enter(dir); err != nil { // a folder changed meanwhile
		return &blockedError{dir: dir, err: err}
	}
	return nil
}

// enter resolves dir/. : that needs search permission on dir and on every
// folder above it, and opens nothing but a path.
func enter(dir string) error {
	fd, err := unix.Open(dir+"/.", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

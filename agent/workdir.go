package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/internal/fsperm"
)

// Work dir layout:
//
//	WORK_DIR/            0711  (at least o+x) the agent's; tasks may pass
//	  tasks/             0711  sandboxes' parent
//	    TASK_ID/         0700  a sandbox, owned by the task's user
//	  state/             0700  the agent's alone
//	    agent-id         0600
//	    agent.lock       0600
//	    tasks/TASK_ID/checkpoint.json  0600 (dirs 0700)
//
// Before tasks ran as users, the id file and the lock sat in WORK_DIR and
// checkpoints in the sandboxes: those are read (and moved) as a fallback.
const (
	tasksDir    = "tasks"
	stateDir    = "state"
	agentIDFile = "agent-id"
	lockFile    = "agent.lock"
)

// prepareWorkDir makes the work dir's folders with their modes, fixing
// the modes of folders an earlier agent left. The work dir itself only
// gains search permission (it may be a folder the operator made); one that
// other users may write to is refused, as tasks could replace the agent's
// state in it.
func prepareWorkDir(workDir string) error {
	if err := os.MkdirAll(workDir, 0o711); err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	fi, err := os.Stat(workDir)
	if err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	mode := fi.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetgid)
	if mode&0o022 != 0 && mode&fs.ModeSticky == 0 {
		return fmt.Errorf("work dir %s is writable by other users (mode %v): tasks could replace the agent's files in it", workDir, fi.Mode())
	}
	if mode&0o011 != 0o011 {
		if err := os.Chmod(workDir, mode|0o011); err != nil {
			return fmt.Errorf("work dir: %w", err)
		}
	}
	for _, d := range []struct {
		path string
		perm fs.FileMode
	}{
		{filepath.Join(workDir, tasksDir), 0o711},
		{filepath.Join(workDir, stateDir), 0o700},
		{filepath.Join(workDir, stateDir, tasksDir), 0o700},
	} {
		if err := os.MkdirAll(d.path, d.perm); err != nil {
			return fmt.Errorf("work dir: %w", err)
		}
		fi, err := os.Lstat(d.path)
		if err != nil {
			return fmt.Errorf("work dir: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("work dir: %s is not a folder", d.path)
		}
		if fi.Mode().Perm() != d.perm {
			if err := os.Chmod(d.path, d.perm); err != nil {
				return fmt.Errorf("work dir: %w", err)
			}
		}
	}
	return nil
}

// readAgentID returns the id persisted in workDir, or "" if there is none.
func readAgentID(workDir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(workDir, stateDir, agentIDFile))
	if errors.Is(err, fs.ErrNotExist) {
		data, err = os.ReadFile(filepath.Join(workDir, agentIDFile)) // the old place
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read agent id: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// writeAgentID persists id in workDir, and drops an id file from the old
// place.
func writeAgentID(workDir, id string) error {
	if err := fsperm.WriteAtomic(filepath.Join(workDir, stateDir, agentIDFile), []byte(id+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(workDir, agentIDFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// moveOldAgentID moves an id file of the old layout into the state folder
// (unless one is there already, which wins).
func moveOldAgentID(workDir string) error {
	data, err := os.ReadFile(filepath.Join(workDir, agentIDFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read old agent id: %w", err)
	}
	if _, err := os.Stat(filepath.Join(workDir, stateDir, agentIDFile)); err == nil {
		return os.Remove(filepath.Join(workDir, agentIDFile))
	}
	return writeAgentID(workDir, strings.TrimSpace(string(data)))
}

// lockWorkDir makes sure only one agent uses workDir at a time. The lock
// files are opened close-on-exec, so tasks never inherit them. An agent
// of the old layout locks WORK_DIR/agent.lock: where that file exists it
// is locked too.
func lockWorkDir(workDir string) (unlock func(), err error) {
	f, err := lockFileAt(filepath.Join(workDir, stateDir, lockFile), workDir, true)
	if err != nil {
		return nil, err
	}
	old, err := lockFileAt(filepath.Join(workDir, lockFile), workDir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return func() { _ = f.Close() }, nil
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { _ = old.Close(); _ = f.Close() }, nil
}

// lockFileAt takes an exclusive lock on path, created (0600) if create
// is set; otherwise a missing file is fs.ErrNotExist.
func lockFileAt(path, workDir string, create bool) (*os.File, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, fs.ErrNotExist) && !create {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("lock work dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("work dir %s is in use by another agent", workDir)
		}
		return nil, fmt.Errorf("lock work dir: %w", err)
	}
	return f, nil
}

// localIPTowards returns the local address used to reach the NATS server,
// or 127.0.0.1. A UDP "dial" sends nothing; it only picks a route.
func localIPTowards(nc *nats.Conn) string {
	addr := nc.ConnectedAddr()
	if addr == "" {
		return "127.0.0.1"
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "127.0.0.1"
	}
	defer c.Close()
	if ua, ok := c.LocalAddr().(*net.UDPAddr); ok && ua.IP != nil {
		return ua.IP.String()
	}
	return "127.0.0.1"
}

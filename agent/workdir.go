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
)

// readAgentID returns the id persisted in workDir, or "" if there is none.
func readAgentID(workDir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(workDir, agentIDFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read agent id: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// writeAgentID persists id in workDir.
func writeAgentID(workDir, id string) error {
	return writeFileAtomic(filepath.Join(workDir, agentIDFile), []byte(id+"\n"), 0o644)
}

// writeFileAtomic replaces path with data: a reader, or a crash, sees the
// old content or the new one, never a mix.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// lockWorkDir makes sure only one agent uses workDir at a time. The lock
// file is opened close-on-exec, so tasks never inherit it.
func lockWorkDir(workDir string) (unlock func(), err error) {
	path := filepath.Join(workDir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
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
	return func() { _ = f.Close() }, nil
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

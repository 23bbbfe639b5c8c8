// Package fsperm keeps the folders and files that hold cluster state or
// secrets (the master's store, app env) closed to other users: it creates
// them with a private mode and tightens an existing one that is looser,
// saying so in the log.
package fsperm

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
)

// Dir makes dir, and any missing parent, with perm; an existing dir whose
// mode allows more than perm loses the bits perm lacks. A shared folder (sticky
// bit, as /tmp) is refused, never changed: it belongs to every user.
func Dir(dir string, perm fs.FileMode, log *slog.Logger) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("create folder %s: %w", dir, err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("folder %s: %w", dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	if info.Mode()&fs.ModeSticky != 0 {
		return fmt.Errorf("folder %s is shared by all users (mode %s): give atoll a folder of its own", dir, info.Mode())
	}
	return tighten(dir, info.Mode(), perm, log)
}

// File takes from an existing file the permission bits perm lacks; a file
// that does not exist is left to be created with perm by its writer.
func File(path string, perm fs.FileMode, log *slog.Logger) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("file %s: %w", path, err)
	}
	return tighten(path, info.Mode(), perm, log)
}

// tighten removes from path's mode the permission bits perm lacks; it
// never adds one, so a stricter mode stays as it is.
func tighten(path string, mode, perm fs.FileMode, log *slog.Logger) error {
	was := mode.Perm()
	now := was & perm
	if now == was {
		return nil
	}
	if err := os.Chmod(path, now); err != nil {
		return fmt.Errorf("tighten %s from %s to %s: %w", path, was, now, err)
	}
	if log != nil {
		log.Warn("tightened the mode of a private path that other users could open", "path", path, "was", was.String(), "now", now.String())
	}
	return nil
}

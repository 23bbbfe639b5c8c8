package lbsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// DefaultKeep is how many previous configs WriteConfig keeps.
const DefaultKeep = 5

// WriteConfig installs cfgText at path, and each map file (path → content)
// beside it, the way a reload can trust:
//
//   - the maps are written first (atomic rename), since `haproxy -c` loads
//     them; the candidate config goes to a temp file in path's directory;
//   - the candidate is checked with CheckWithHAProxy(bin); a failing one is
//     removed, the previous map files are put back, and the error returned:
//     the file at path is untouched and the old config keeps serving;
//   - otherwise the previous config is kept as path.1 (path.1 → path.2 ...
//     up to path.<keep>, 5 when keep is 0) and the candidate renamed over
//     path.
//
// A config identical to the one on disk is neither rewritten nor rotated.
// check false skips `haproxy -c` (for callers that checked already).
func WriteConfig(ctx context.Context, bin, path, cfgText string, maps map[string]string, keep int, check bool) error {
	nice := -1
	if check {
		nice = 0
	}
	return writeConfig(ctx, bin, path, cfgText, maps, keep, nice)
}

// writeConfig is WriteConfig with the check at niceness checkNice; a
// negative checkNice skips the check.
func writeConfig(ctx context.Context, bin, path, cfgText string, maps map[string]string, keep int, checkNice int) error {
	if keep <= 0 {
		keep = DefaultKeep
	}
	restore, err := writeMaps(maps)
	if err != nil {
		restore()
		return err
	}
	old, err := os.ReadFile(path)
	if err == nil && string(old) == cfgText {
		return nil
	}
	tmp, err := writeTemp(path, []byte(cfgText))
	if err != nil {
		restore()
		return err
	}
	if checkNice >= 0 {
		if err := checkWithHAProxy(ctx, bin, tmp, checkNice); err != nil {
			os.Remove(tmp)
			restore()
			return fmt.Errorf("candidate config rejected, %s unchanged: %w", path, err)
		}
	}
	if err := rotate(path, keep); err != nil {
		os.Remove(tmp)
		restore()
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		restore()
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// writeMaps writes each map atomically and returns a func that puts the
// previous contents back (removing maps that did not exist).
func writeMaps(maps map[string]string) (restore func(), err error) {
	type saved struct {
		path   string
		data   []byte
		exists bool
	}
	var undo []saved
	restore = func() {
		for _, s := range undo {
			if !s.exists {
				os.Remove(s.path)
				continue
			}
			if tmp, err := writeTemp(s.path, s.data); err == nil {
				if os.Rename(tmp, s.path) != nil {
					os.Remove(tmp)
				}
			}
		}
	}
	for p, text := range maps {
		old, err := os.ReadFile(p)
		exists := err == nil
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return restore, err
		}
		if exists && string(old) == text {
			continue
		}
		tmp, err := writeTemp(p, []byte(text))
		if err != nil {
			return restore, err
		}
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			return restore, err
		}
		undo = append(undo, saved{path: p, data: old, exists: exists})
		syncDir(filepath.Dir(p))
	}
	return restore, nil
}

// writeTemp writes data to a new, synced temp file beside path.
func writeTemp(path string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// rotate shifts path.1..path.<keep-1> up by one and hard-links the current
// path as path.1, so path itself stays in place until the rename.
func rotate(path string, keep int) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for i := keep - 1; i >= 1; i-- {
		from := path + "." + strconv.Itoa(i)
		if err := os.Rename(from, path+"."+strconv.Itoa(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	first := path + ".1"
	os.Remove(first)
	if err := os.Link(path, first); err != nil {
		data, rerr := os.ReadFile(path)
		if rerr != nil {
			return rerr
		}
		if err := os.WriteFile(first, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

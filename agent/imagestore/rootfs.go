package imagestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// lease records that a task's root filesystem uses an image, so GC keeps
// the image and its layers while the task lives (and across agent
// restarts: leases are files).
type lease struct {
	Image string `json:"image"` // manifest digest
	Dir   string `json:"dir"`
}

// Rootfs gives the task id a root filesystem of img in dir: dir/rootfs is
// an overlay whose lower layers are the cached layers (read-only, shared)
// and whose upper layer dir/upper holds the task's own writes. It returns
// the rootfs path. Calling it again for a mounted dir (an agent that
// restarted and adopts its task) returns the same path. ReleaseRootfs undoes it.
func (s *Store) Rootfs(id string, img *Image, dir string) (string, error) {
	if id == "" || strings.ContainsAny(id, "/\x00") {
		return "", fmt.Errorf("rootfs: bad task id %q", id)
	}
	if len(img.Layers) == 0 {
		return "", fmt.Errorf("rootfs: image %s has no layers", img.Reference)
	}
	rootfs := filepath.Join(dir, "rootfs")
	// Lease before looking at the layers: GC takes s.mu and reads the
	// leases, so once this is written nothing it needs goes away.
	s.mu.Lock()
	err := writeJSON(s.leasePath(id), lease{Image: img.Digest, Dir: dir})
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	now := time.Now()
	os.Chtimes(s.imagePath(img.Digest), now, now)
	if mounted(rootfs) {
		return rootfs, nil
	}
	lower := make([]string, 0, len(img.Layers))
	for i := len(img.Layers) - 1; i >= 0; i-- { // overlayfs: the top layer first
		d := s.layerDir(img.Layers[i])
		if _, err := os.Stat(d); err != nil {
			s.dropLease(id)
			return "", fmt.Errorf("rootfs: image %s: layer %s missing from the cache (pull it again)", img.Reference, img.Layers[i])
		}
		lower = append(lower, d)
	}
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{upper, work, rootfs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			s.dropLease(id)
			return "", fmt.Errorf("rootfs: %w", err)
		}
	}
	// The upper folder's root becomes the container's "/": it takes the
	// image's root mode, not MkdirAll's.
	if fi, err := os.Stat(lower[len(lower)-1]); err == nil {
		os.Chmod(upper, fi.Mode().Perm())
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lower, ":"), upper, work)
	if len(opts) >= os.Getpagesize() {
		s.dropLease(id)
		return "", fmt.Errorf("rootfs: image %s: %d layers make overlay options longer than the kernel takes (%d bytes)", img.Reference, len(lower), os.Getpagesize())
	}
	if err := unix.Mount("overlay", rootfs, "overlay", 0, opts); err != nil {
		s.dropLease(id)
		return "", fmt.Errorf("rootfs: mount overlay on %s: %w", rootfs, err)
	}
	return rootfs, nil
}

// ReleaseRootfs unmounts task id's root filesystem, removes dir's rootfs,
// upper and work folders and drops the lease. Releasing twice is fine.
func (s *Store) ReleaseRootfs(id, dir string) error {
	if err := s.Unmount(id, dir); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(dir, "upper")); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	return nil
}

// Unmount is ReleaseRootfs that keeps dir/upper, the task's own writes,
// for a look after the task ended (Mesos keeps a finished task's sandbox
// until its GC delay); removing dir later removes them.
func (s *Store) Unmount(id, dir string) error {
	rootfs := filepath.Join(dir, "rootfs")
	if mounted(rootfs) {
		if err := unix.Unmount(rootfs, 0); err != nil {
			// A process still holding it (a container not yet
			// deleted): detach now, the kernel frees it when the
			// last user goes.
			if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("rootfs: unmount %s: %w", rootfs, err)
			}
		}
	}
	for _, d := range []string{"rootfs", "work"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	return s.dropLease(id)
}

func (s *Store) dropLease(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.leasePath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rootfs: %w", err)
	}
	return nil
}

func (s *Store) leasePath(id string) string {
	return filepath.Join(s.root, "leases", id+".json")
}

// mounted reports whether path is a mount point: it sits on another
// device than its parent.
func mounted(path string) bool {
	var st, pst unix.Stat_t
	if unix.Lstat(path, &st) != nil || unix.Lstat(filepath.Dir(path), &pst) != nil {
		return false
	}
	return st.Dev != pst.Dev
}

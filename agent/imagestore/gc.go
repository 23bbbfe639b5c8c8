package imagestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// GCResult says what a GC removed.
type GCResult struct {
	Images []string // manifest digests
	Layers []string // diff ids
	Bytes  int64    // of the layers removed
}

// GC removes the images no task's lease holds and that were last used more
// than delay ago, then the layers no remaining image references (and that
// no pull is fetching). Mesos's docker store and containerd both collect
// this way: an image stays cached for a while after its last task, so a
// restart or a redeploy starts without a download.
func (s *Store) GC(delay time.Duration) (GCResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var res GCResult
	leased := map[string]bool{}
	leaseFiles, err := filepath.Glob(filepath.Join(s.root, "leases", "*.json"))
	if err != nil {
		return res, err
	}
	for _, f := range leaseFiles {
		var l lease
		if err := readJSON(f, &l); err != nil {
			return res, fmt.Errorf("image gc: lease %s: %w", f, err)
		}
		leased[l.Image] = true
	}
	cutoff := time.Now().Add(-delay)
	kept := map[string]bool{} // diff ids of the images that stay
	imageFiles, err := filepath.Glob(filepath.Join(s.root, "images", "*.json"))
	if err != nil {
		return res, err
	}
	for _, f := range imageFiles {
		var img Image
		fi, serr := os.Stat(f)
		if err := readJSON(f, &img); err != nil || serr != nil {
			continue // half-written: the next pull rewrites it
		}
		if leased[img.Digest] || fi.ModTime().After(cutoff) {
			for _, id := range img.Layers {
				kept[id] = true
			}
			continue
		}
		if err := os.Remove(f); err != nil {
			return res, fmt.Errorf("image gc: %w", err)
		}
		res.Images = append(res.Images, img.Digest)
	}
	// References to removed images now lead nowhere: cached() misses,
	// the next start pulls again.
	refFiles, _ := filepath.Glob(filepath.Join(s.root, "refs", "*.json"))
	for _, f := range refFiles {
		var e refEntry
		if readJSON(f, &e) == nil {
			if _, err := os.Stat(s.imagePath(e.Digest)); os.IsNotExist(err) {
				os.Remove(f)
			}
		}
	}
	layerDirs, err := os.ReadDir(filepath.Join(s.root, "layers", "sha256"))
	if err != nil {
		return res, fmt.Errorf("image gc: %w", err)
	}
	for _, d := range layerDirs {
		id := "sha256:" + d.Name()
		if kept[id] || s.inflight[id] != nil {
			continue
		}
		// A layer a pull has just unpacked but not yet recorded in
		// an image is young: the delay keeps it.
		if fi, err := d.Info(); err != nil || fi.ModTime().After(cutoff) && delay > 0 {
			continue
		}
		path := s.layerDir(id)
		res.Bytes += du(path)
		if err := os.RemoveAll(path); err != nil {
			return res, fmt.Errorf("image gc: %w", err)
		}
		res.Layers = append(res.Layers, id)
	}
	return res, nil
}

func du(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// Leases lists the task ids holding a root filesystem (an agent that
// restarted compares them with the tasks it adopts and releases the rest).
func (s *Store) Leases() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(s.root, "leases", "*.json"))
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(files))
	for _, f := range files {
		ids = append(ids, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	return ids, nil
}

// RunGC collects every interval with delay until ctx ends; the agent
// owns the goroutine that runs it. report gets each pass's result or
// error (nil: ignored).
func (s *Store) RunGC(ctx context.Context, interval, delay time.Duration, report func(GCResult, error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			res, err := s.GC(delay)
			if report != nil {
				report(res, err)
			}
		}
	}
}

package master

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/fsperm"
)

// segmentName is the file of log segment n: segment 0 is events.log (the
// one log of earlier versions), later ones events-<n>.log.
func segmentName(n int) string {
	if n == 0 {
		return logFile
	}
	return fmt.Sprintf("events-%016d.log", n)
}

// listSegments returns the numbers of the log segments in dir, in order.
func listSegments(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var segs []int
	for _, e := range entries {
		name := e.Name()
		if name == logFile {
			segs = append(segs, 0)
			continue
		}
		num, ok := strings.CutPrefix(name, "events-")
		if !ok {
			continue
		}
		num, ok = strings.CutSuffix(num, ".log")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n <= 0 || segmentName(n) != name {
			return nil, fmt.Errorf("%s: %s looks like a log segment but is not named as one", dir, name)
		}
		segs = append(segs, n)
	}
	slices.Sort(segs)
	return segs, nil
}

// replayed is what replay found in a segment.
type replayed struct {
	good    int64  // offset after the last whole line
	torn    int    // bytes after it (a line without its newline)
	events  int    // whole lines
	lastSeq uint64 // of the last whole line, 0 without one
}

// decodeChunk is how many lines one decoding goroutine takes at a time.
const decodeChunk = 512

// replay applies the events of one segment's bytes that follow st, in
// order: lines are decoded side by side, then applied one by one.
func replay(data []byte, path string, st *events.State) (replayed, error) {
	var r replayed
	var offs []int64
	var lines [][]byte
	for off := 0; off < len(data); {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			r.torn = len(data) - off
			break
		}
		offs = append(offs, int64(off))
		lines = append(lines, data[off:off+i+1])
		off += i + 1
		r.good = int64(off)
	}
	r.events = len(lines)
	evs := make([]events.Event, len(lines))
	chunks := (len(lines) + decodeChunk - 1) / decodeChunk
	// parallel stops at the first failure; the smallest offset is what
	// the operator must look at.
	decodeErr := make([]error, chunks)
	parallel(chunks, func(c int) error {
		for i := c * decodeChunk; i < min((c+1)*decodeChunk, len(lines)); i++ {
			e, err := events.DecodeEvent(lines[i])
			if err != nil {
				decodeErr[c] = fmt.Errorf("event log %s: undecodable line at offset %d (%d bytes): %w; "+
					"the events after it were acknowledged, so the master will not start without them: "+
					"move the file aside or repair that line", path, offs[i], len(lines[i]), err)
				return decodeErr[c]
			}
			evs[i] = e
		}
		return nil
	})
	if err := firstErr(decodeErr); err != nil {
		return replayed{}, err
	}
	for i, e := range evs {
		if e.Seq > st.Seq { // else already in the snapshot
			if err := st.Apply(e); err != nil {
				return replayed{}, fmt.Errorf("replay event log %s at offset %d: %w", path, offs[i], err)
			}
		}
		r.lastSeq = e.Seq
	}
	return r, nil
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// removeSegments deletes the segments ns, oldest first, and makes that
// durable. A crash part-way leaves segments the snapshot already holds:
// Load skips their events and removes them.
func (f *FileStore) removeSegments(ns []int) error {
	for _, n := range ns {
		if err := os.Remove(filepath.Join(f.dir, segmentName(n))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove folded log segment: %w", err)
		}
		if f.crashAt != nil && f.crashAt("removed-one") {
			return errCrash
		}
	}
	return fsperm.SyncDir(f.dir)
}

// removeTempSnapshots deletes snapshots a compaction (or fsperm's
// WriteAtomic) started and never renamed into place.
func removeTempSnapshots(dir string, logger *slog.Logger) {
	tmps, _ := filepath.Glob(filepath.Join(dir, "."+snapshotFile+".tmp*"))
	for _, t := range tmps {
		if err := os.Remove(t); err != nil {
			logger.Warn("store: remove unfinished snapshot", "file", t, "err", err)
		}
	}
}

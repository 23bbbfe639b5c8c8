package master

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The compactor folds the snapshot and the closed log segments into a new
// snapshot and then deletes those segments. It runs on its own goroutine,
// owned by the store, and touches only files the appender no longer
// writes: appends go on while it works. Its steps, and what a crash after
// each leaves for Load:
//
//  1. read the snapshot and the closed segments into a state;
//  2. write it to a temporary file and sync it (a crash leaves the
//     temporary file: Load removes it and replays the segments as before);
//  3. rename it over the snapshot and sync the folder (a crash leaves the
//     new snapshot and segments it already holds: Load skips their events
//     by seq and removes them);
//  4. remove the folded segments, oldest first, and sync the folder.
//
// A failed compaction changes nothing that Load relies on; it is tried
// again at the next new segment, or after compactRetry.

// compactRetry is how long the compactor waits after a failure before it
// tries again without being kicked.
const compactRetry = 30 * time.Second

// startCompactor starts the store's compactor goroutine. f.amu is held.
func (f *FileStore) startCompactor() {
	ctx, cancel := context.WithCancel(context.Background())
	f.wake = make(chan struct{}, 1)
	f.stop, f.done = cancel, make(chan struct{})
	go f.compactLoop(ctx, f.wake, f.done)
	f.kickCompactor()
}

// stopCompactor stops the compactor and waits for it; a compaction under
// way is abandoned between two records.
func (f *FileStore) stopCompactor() {
	f.amu.Lock()
	stop, done := f.stop, f.done
	f.stop, f.done, f.wake = nil, nil, nil
	f.amu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// kickCompactor tells the compactor to look whether a compaction is due.
// f.amu is held.
func (f *FileStore) kickCompactor() {
	if f.wake == nil {
		return
	}
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *FileStore) compactLoop(ctx context.Context, wake <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	retry := time.NewTimer(compactRetry)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-retry.C:
		}
		if !f.compactionDue() {
			continue
		}
		if err := f.compact(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			f.logger.Warn("store compaction failed; the log keeps every event", "err", err, "retry_in", compactRetry)
			retry.Reset(compactRetry)
		}
	}
}

// compactionDue: the closed segments hold at least compactMin events and
// at least as many as the snapshot has records.
func (f *FileStore) compactionDue() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.closed {
		n += s.events
	}
	return len(f.closed) > 0 && n >= max(f.compactMin, f.snapRecords)
}

// compact folds the closed segments into the snapshot (see above).
func (f *FileStore) compact(ctx context.Context) error {
	f.compactMu.Lock()
	defer f.compactMu.Unlock()
	f.mu.Lock()
	fold := append([]segment(nil), f.closed...)
	f.mu.Unlock()
	if len(fold) == 0 {
		return nil
	}
	err := f.fold(ctx, fold)
	f.mu.Lock()
	f.compactErr = err
	f.mu.Unlock()
	return err
}

func (f *FileStore) fold(ctx context.Context, fold []segment) error {
	start := time.Now()
	snap := filepath.Join(f.dir, snapshotFile)
	st, _, err := readSnapshot(snap)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	events := 0
	ns := make([]int, len(fold))
	for i, s := range fold {
		if err := ctx.Err(); err != nil {
			return err
		}
		path := filepath.Join(f.dir, segmentName(s.n))
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("compact: %w", err)
		}
		r, err := replay(data, path, st)
		if err != nil {
			return fmt.Errorf("compact: %w", err)
		}
		if r.torn > 0 {
			return fmt.Errorf("compact: closed segment %s ends in a partial event", path)
		}
		events += r.events
		ns[i] = s.n
	}
	records, err := f.writeSnapshot(ctx, snap, st)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if f.crashAt != nil && f.crashAt("renamed") {
		return errCrash
	}
	// From here the snapshot holds the folded segments: whatever happens
	// next, the compactor must not fold them again from an older state.
	f.mu.Lock()
	f.closed = f.closed[len(fold):]
	f.snapRecords = records
	f.mu.Unlock()
	if err := f.removeSegments(ns); err != nil {
		if errors.Is(err, errCrash) {
			return err
		}
		// Load removes them; their events are skipped meanwhile.
		f.logger.Warn("store: remove folded log segments", "err", err)
	}
	f.logger.Info("store compacted", "segments", len(fold), "events", events, "records", records,
		"seq", st.Seq, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

package lbsync

import (
	"context"
	"sync"
	"time"
)

// diskWriter installs the configs of runtime-only changes in the
// background: HAProxy already serves them, so the file (which only a later
// reload reads) may follow a moment later, checked with `haproxy -c` like
// every config, without holding up the next change. Newest wins: a job
// still waiting when a newer one comes is dropped, and a job older than
// what a reload wrote meanwhile is skipped. Background writes come at most
// every gap: `haproxy -c` costs a core for a tenth of a second at 1,000
// backends, and a burst of task changes needs only its last file.
type diskWriter struct {
	write func(ctx context.Context, cfg string, maps map[string]string) error
	gap   time.Duration

	// fileMu serialises every write of the live file, in the background
	// or for a reload; written is the newest generation on disk.
	fileMu  sync.Mutex
	written uint64

	mu      sync.Mutex
	gen     uint64
	pending *diskJob
	err     error
	wake    chan struct{}
	idle    *sync.Cond // signalled when nothing is pending or being written
	busy    bool
}

type diskJob struct {
	gen  uint64
	cfg  string
	maps map[string]string
}

func newDiskWriter(write func(ctx context.Context, cfg string, maps map[string]string) error) *diskWriter {
	w := &diskWriter{write: write, wake: make(chan struct{}, 1)}
	w.idle = sync.NewCond(&w.mu)
	return w
}

// run writes queued jobs until ctx ends.
func (w *diskWriter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		w.mu.Lock()
		job := w.pending
		w.pending, w.busy = nil, job != nil
		w.mu.Unlock()
		if job == nil {
			continue
		}
		err := w.writeGen(ctx, job.gen, job.cfg, job.maps)
		w.mu.Lock()
		w.busy = false
		if job.gen == w.gen { // only the newest job's outcome is news
			w.err = err
		}
		if w.pending == nil {
			w.idle.Broadcast()
		}
		w.mu.Unlock()
		if w.gap > 0 {
			t := time.NewTimer(w.gap)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// queue hands a config to the background writer.
func (w *diskWriter) queue(cfg string, maps map[string]string) {
	w.mu.Lock()
	w.gen++
	w.pending = &diskJob{gen: w.gen, cfg: cfg, maps: maps}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// writeNow writes a config at once (for a reload), superseding anything
// queued.
func (w *diskWriter) writeNow(ctx context.Context, cfg string, maps map[string]string) error {
	w.mu.Lock()
	w.gen++
	gen := w.gen
	w.pending = nil
	w.mu.Unlock()
	err := w.writeGen(ctx, gen, cfg, maps)
	w.mu.Lock()
	w.err = nil // a reload's own error goes to its caller
	if !w.busy {
		w.idle.Broadcast()
	}
	w.mu.Unlock()
	return err
}

func (w *diskWriter) writeGen(ctx context.Context, gen uint64, cfg string, maps map[string]string) error {
	w.fileMu.Lock()
	defer w.fileMu.Unlock()
	if gen <= w.written {
		return nil // a newer config is on disk already
	}
	if err := w.write(ctx, cfg, maps); err != nil {
		return err
	}
	w.written = gen
	return nil
}

// wait blocks until nothing is queued or being written, and returns the
// newest background write's error.
func (w *diskWriter) wait() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.pending != nil || w.busy {
		w.idle.Wait()
	}
	return w.err
}

// lastErr is the newest background write's error.
func (w *diskWriter) lastErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

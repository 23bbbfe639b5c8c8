package events

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Handler receives a follower's view of the state. Both methods run on the
// follower's goroutine, must return promptly, and must not keep s: it
// changes after they return.
type Handler interface {
	// Reset delivers a complete state: after the first snapshot and after
	// every resync.
	Reset(s *State)
	// Applied delivers one event right after it was applied to s.
	Applied(s *State, e Event)
}

// IdleHandler is a Handler that also hears when the follower has applied
// every event received so far: the moment to act once on a burst of
// changes (the HAProxy renderer does), as raft's Ready batches work. Idle
// runs on the follower's goroutine after Reset or after Applied calls,
// never twice for the same state.
type IdleHandler interface {
	Handler
	Idle(s *State)
}

// Follower keeps a copy of the leader's state by snapshot + stream, as
// client-go's informers do: subscribe first, then fetch a snapshot, apply
// the buffered events that are newer, then stream. Anything out of order
// (a gap in seq, an epoch change, a sync tick ahead of us, a missed sync
// tick, a dropped event) triggers a new snapshot, never a guess.
type Follower struct {
	Source  Source
	Handler Handler
	// SyncTimeout is how long without a sync tick before a resync;
	// the leader ticks every second. Default 3s.
	SyncTimeout time.Duration
	// Buffer is how many events may wait to be applied before the
	// follower drops them and resyncs. Default 65536.
	Buffer int
	Log    *slog.Logger

	synced  atomic.Bool
	resyncs atomic.Uint64
	applied atomic.Uint64
}

// Synced reports whether the follower has had a complete snapshot. It never
// goes back to false: after that, a stale state beats none.
func (f *Follower) Synced() bool { return f.synced.Load() }

// Resyncs counts snapshots taken after the first.
func (f *Follower) Resyncs() uint64 { return f.resyncs.Load() }

// Applied counts events applied.
func (f *Follower) Applied() uint64 { return f.applied.Load() }

// defaultFollowerBuffer is how many events may wait to be applied. A burst
// longer than this (a bulk load of tens of thousands of tasks) costs a
// resync; the buffer holds pointers, so an entry costs 8 bytes.
const defaultFollowerBuffer = 1 << 16

// Run follows until ctx ends.
func (f *Follower) Run(ctx context.Context) error {
	log := f.Log
	if log == nil {
		log = slog.Default()
	}
	syncTimeout := f.SyncTimeout
	if syncTimeout <= 0 {
		syncTimeout = 3 * time.Second
	}

	buffer := f.Buffer
	if buffer <= 0 {
		buffer = defaultFollowerBuffer
	}
	ch := make(chan *Event, buffer)
	var overflow atomic.Bool
	stop, err := f.Source.Subscribe(func(e Event) {
		select {
		case ch <- &e:
		default:
			overflow.Store(true)
		}
	})
	if err != nil {
		return fmt.Errorf("follower: %w", err)
	}
	defer stop()

	check := time.NewTicker(syncTimeout / 3)
	defer check.Stop()

	for first := true; ; first = false {
		// Clear the flag before asking: an event dropped while the
		// snapshot is on its way may be newer than the snapshot.
		overflow.Store(false)
		st, err := f.snapshot(ctx, log)
		if err != nil {
			return err // only ctx errors come back
		}
		if !first {
			f.resyncs.Add(1)
		}
		reason := f.stream(ctx, st, ch, &overflow, check.C, syncTimeout)
		if ctx.Err() != nil {
			return nil
		}
		log.Info("follower resync", "reason", reason, "epoch", st.Epoch, "seq", st.Seq)
	}
}

// snapshot fetches a snapshot, retrying with backoff until ctx ends.
func (f *Follower) snapshot(ctx context.Context, log *slog.Logger) (*State, error) {
	backoff := 50 * time.Millisecond
	for {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := f.Source.Snapshot(sctx)
		cancel()
		if err == nil {
			return st, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		log.Debug("follower snapshot failed", "err", err, "retry", backoff)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// stream applies events on top of st until something calls for a resync,
// and returns why.
func (f *Follower) stream(ctx context.Context, st *State, ch <-chan *Event, overflow *atomic.Bool, tick <-chan time.Time, syncTimeout time.Duration) string {
	delivered := false
	deliver := func() {
		if !delivered {
			f.Handler.Reset(st)
			f.synced.Store(true)
			delivered = true
		}
	}
	idler, _ := f.Handler.(IdleHandler)
	idleSeq, idled := uint64(0), false
	idle := func() {
		if idler != nil && (!idled || st.Seq != idleSeq) {
			idler.Idle(st)
			idleSeq, idled = st.Seq, true
		}
	}
	// Events that arrived while we waited for the snapshot come first;
	// the snapshot is delivered once they are applied, so the handler's
	// first view is as fresh as we can make it.
	lastSync := time.Now()
	for {
		// A dropped event shows as a gap too; say what really happened.
		if overflow.Load() {
			return "event buffer overflow"
		}
		select {
		case e := <-ch:
			if why := f.handle(st, *e, delivered); why != "" {
				return why
			}
			if e.Type == Sync {
				lastSync = time.Now()
			}
			continue
		default:
		}
		deliver()
		idle()
		select {
		case <-ctx.Done():
			return "stopped"
		case e := <-ch:
			if why := f.handle(st, *e, delivered); why != "" {
				return why
			}
			if e.Type == Sync {
				lastSync = time.Now()
			}
		case now := <-tick:
			if now.Sub(lastSync) > syncTimeout {
				return "missed sync tick"
			}
		}
	}
}

// handle applies one event, or says why it cannot.
func (f *Follower) handle(st *State, e Event, notify bool) string {
	switch {
	case e.Epoch < st.Epoch:
		return "" // a deposed leader's event: ignore
	case e.Epoch > st.Epoch:
		return fmt.Sprintf("epoch %d -> %d", st.Epoch, e.Epoch)
	case e.Type == Sync:
		if e.Seq > st.Seq {
			return fmt.Sprintf("sync tick at seq %d, have %d", e.Seq, st.Seq)
		}
		return ""
	case e.Seq <= st.Seq:
		return "" // already in the snapshot
	case e.Seq > st.Seq+1:
		return fmt.Sprintf("gap: seq %d after %d", e.Seq, st.Seq)
	}
	if err := st.Apply(e); err != nil {
		return fmt.Sprintf("apply: %v", err)
	}
	f.applied.Add(1)
	if notify {
		f.Handler.Applied(st, e)
	}
	return ""
}

package events

import (
	"context"
	"errors"
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
//
// It also checks that it holds what the leader holds, not only as many
// events: it keeps the leader's digest chain (see Chain) from the
// snapshot's digest over the bytes of every event it applies, and a sync
// tick at its own seq whose digest differs, or a tick behind events it
// applied since its snapshot (it holds an event the leader never
// published), means its state diverged: a forged event, a bug. That too is
// a resync, logged as a warning with both digests.
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
	ch := make(chan *received, buffer)
	var overflow atomic.Bool
	stop, err := f.Source.Subscribe(func(e Event, data []byte) {
		select {
		case ch <- &received{e, data}:
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
		snap, err := f.snapshot(ctx, log)
		if err != nil {
			return err // only ctx errors come back
		}
		if !first {
			f.resyncs.Add(1)
		}
		st := snap.State
		r := f.stream(ctx, newFollowed(snap), ch, &overflow, check.C, syncTimeout)
		if ctx.Err() != nil {
			return nil
		}
		if r.diverged {
			log.Warn("follower state diverged from the leader's: resync", "reason", r.why, "epoch", st.Epoch, "seq", st.Seq)
		} else {
			log.Info("follower resync", "reason", r.why, "epoch", st.Epoch, "seq", st.Seq)
		}
	}
}

// received is one delivery from the Source: the event and its bytes.
type received struct {
	e    Event
	data []byte
}

// followed is the state a follower keeps, with what it knows of the
// leader's digest chain at it.
type followed struct {
	*State
	chain Chain
	// from is the seq of the snapshot: a sync tick from before it may
	// still be in the buffer, one from after it cannot be behind us.
	from uint64
}

func newFollowed(s Snapshot) *followed {
	s.State.DropVersions() // a follower answers with current definitions only
	return &followed{State: s.State, chain: ChainAt(s.State.Epoch, s.State.Seq, s.Digest), from: s.State.Seq}
}

// resync says why the follower must take a new snapshot; the zero value
// says it need not.
type resync struct {
	why string
	// diverged: the follower's state differs from the leader's, which
	// no lost message explains.
	diverged bool
}

func (r resync) needed() bool { return r.why != "" }

func resyncf(format string, args ...any) resync { return resync{why: fmt.Sprintf(format, args...)} }

// snapshot fetches a snapshot, retrying with backoff until ctx ends.
func (f *Follower) snapshot(ctx context.Context, log *slog.Logger) (Snapshot, error) {
	backoff := 50 * time.Millisecond
	for {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		snap, err := f.Source.Snapshot(sctx)
		cancel()
		if err == nil && snap.State == nil {
			err = errors.New("snapshot without state")
		}
		if err == nil {
			return snap, nil
		}
		if ctx.Err() != nil {
			return Snapshot{}, ctx.Err()
		}
		log.Debug("follower snapshot failed", "err", err, "retry", backoff)
		select {
		case <-ctx.Done():
			return Snapshot{}, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// stream applies events on top of st until something calls for a resync,
// and returns why.
func (f *Follower) stream(ctx context.Context, st *followed, ch <-chan *received, overflow *atomic.Bool, tick <-chan time.Time, syncTimeout time.Duration) resync {
	delivered := false
	deliver := func() {
		if !delivered {
			f.Handler.Reset(st.State)
			f.synced.Store(true)
			delivered = true
		}
	}
	idler, _ := f.Handler.(IdleHandler)
	idleSeq, idled := uint64(0), false
	idle := func() {
		if idler != nil && (!idled || st.Seq != idleSeq) {
			idler.Idle(st.State)
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
			return resync{why: "event buffer overflow"}
		}
		select {
		case r := <-ch:
			if why := f.handle(st, r, delivered); why.needed() {
				return why
			}
			if r.e.Type == Sync {
				lastSync = time.Now()
			}
			continue
		default:
		}
		deliver()
		idle()
		select {
		case <-ctx.Done():
			return resync{why: "stopped"}
		case r := <-ch:
			if why := f.handle(st, r, delivered); why.needed() {
				return why
			}
			if r.e.Type == Sync {
				lastSync = time.Now()
			}
		case now := <-tick:
			if now.Sub(lastSync) > syncTimeout {
				return resync{why: "missed sync tick"}
			}
		}
	}
}

// handle applies one event, or says why it cannot.
func (f *Follower) handle(st *followed, r *received, notify bool) resync {
	e := r.e
	switch {
	case e.Epoch < st.Epoch:
		return resync{} // a deposed leader's event: ignore
	case e.Epoch > st.Epoch:
		return resyncf("epoch %d -> %d", st.Epoch, e.Epoch)
	case e.Type == Sync:
		return st.check(e)
	case e.Seq <= st.Seq:
		return resync{} // already in the snapshot
	case e.Seq > st.Seq+1:
		return resyncf("gap: seq %d after %d", e.Seq, st.Seq)
	}
	if err := st.Apply(e); err != nil {
		return resyncf("apply: %v", err)
	}
	st.chain.Add(e.Epoch, e.Seq, r.data)
	f.applied.Add(1)
	if notify {
		f.Handler.Applied(st.State, e)
	}
	return resync{}
}

// check compares a sync tick of the follower's epoch with its state.
func (st *followed) check(tick Event) resync {
	switch {
	case tick.Seq > st.Seq:
		return resyncf("sync tick at seq %d, have %d", tick.Seq, st.Seq)
	case tick.Seq < st.from:
		return resync{} // sent before our snapshot, buffered since
	case tick.Seq < st.Seq:
		// The leader ticks in between its events, on the same
		// connection: a tick after our snapshot is behind events we
		// applied only if the leader never published them.
		return resync{why: fmt.Sprintf("sync tick at seq %d after we applied up to %d: events the leader never published", tick.Seq, st.Seq), diverged: true}
	}
	ours := st.chain.At(st.Epoch, st.Seq)
	if tick.Digest.IsZero() || ours.IsZero() || tick.Digest == ours {
		return resync{}
	}
	return resync{why: fmt.Sprintf("digest at seq %d: leader %s, ours %s", tick.Seq, tick.Digest, ours), diverged: true}
}

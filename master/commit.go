package master

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/atollhq/atoll/events"
)

// ErrNotLeader is returned for writes while this master does not lead.
var ErrNotLeader = errors.New("not the leader")

// The master decides under its lock and does its I/O outside it (as raft's
// Ready/Advance and Nomad's plan applier do). A change is stamped and
// applied to the leader's working state under m.mu, which is all a
// decision needs, and joins the open batch. One committer goroutine takes
// the open batch as a whole (without m.mu) and makes it durable with one
// store write (group commit); a second, in batch order, applies its events
// to the published state (published.go), publishes them on NATS and feeds
// them to /v2/events in seq order, and only then sends the agent requests
// that depended on it and tells the callers waiting on it, while the next
// batch is being stored. A batch the store could not keep is taken back
// out of the working state, with every batch after it: a write that could
// not be made changes nothing, and the published state never saw it.

// batch is changes applied to the working state that are not yet durable.
type batch struct {
	evs   []events.Event
	undos []events.Undo
	// out is the launches and kills to agents that name what the batch
	// staged: sent, grouped by agent, once it is durable and published
	// (outbox.go).
	out outbox
	// acks answer agents whose status updates the batch holds (or who
	// must wait for what was staged before): sent once it is durable,
	// never if it is not (the agent sends the update again).
	acks  []func()
	start time.Time
	// beforePass is set when a reconcile pass began while the batch held
	// changes staged before it (pipeline.passing).
	beforePass bool

	once sync.Once
	done chan struct{}
	err  error
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

func (b *batch) empty() bool { return len(b.evs) == 0 && b.out.empty() && len(b.acks) == 0 }

// finish ends the batch for everyone waiting on it; only the first call counts.
func (b *batch) finish(err error) {
	b.once.Do(func() {
		b.err = err
		close(b.done)
	})
}

// durability is what a writer waits on, outside the lock, before it tells
// its caller a change is made.
type durability struct{ b *batch }

// wait returns once everything staged before the durability was taken is
// durable and published, or why it is not.
func (d durability) wait() error {
	if d.b == nil {
		return nil
	}
	<-d.b.done
	return d.b.err
}

// pipeline is the leader's batches on their way to the store. open and
// inflight are guarded by mu, which writers take under Master.mu and the
// committer takes alone: the committer takes a batch and finishes it
// without Master.mu, so a store write never waits for a reconcile pass
// (one of a 10,000-instance scale-up at 100,000 tasks holds Master.mu
// for a second on a busy machine) and the launches a durable batch
// releases go out while the next pass runs. Lock order: Master.mu, then
// mu. published is the committer's and has its own lock.
type pipeline struct {
	mu       sync.Mutex
	open     *batch // gathering changes
	inflight *batch // the batch the committer took last; finished once published
	// passing is set while a reconcile pass runs. The committer then takes
	// a batch the pass alone has added to only once it holds minPassBatch
	// events: a small pass goes in one batch, so each agent gets one
	// request for it, and a big one is stored in chunks while the pass
	// goes on. A batch opened before the pass is taken as before: what
	// writers staged is never held up by a pass.
	passing   bool
	kick      chan struct{}
	published published
}

// minPassBatch is how many events the committer waits for before it takes
// a batch that a running reconcile pass is still adding to.
const minPassBatch = 256

// takeable reports whether the committer may take the open batch now.
// p.mu held.
func (p *pipeline) takeable() bool {
	b := p.open
	return !b.empty() && (!p.passing || b.beforePass || len(b.evs) >= minPassBatch)
}

// passLocked marks a reconcile pass as running; the function it returns
// marks it done and lets the committer take what the pass staged. m.mu
// held for both.
func (m *Master) passLocked() (done func()) {
	m.pipe.mu.Lock()
	m.pipe.passing = true
	m.pipe.open.beforePass = !m.pipe.open.empty()
	m.pipe.mu.Unlock()
	return func() {
		m.pipe.mu.Lock()
		m.pipe.passing = false
		m.pipe.mu.Unlock()
		m.kickCommit()
	}
}

func newPipeline() *pipeline {
	return &pipeline{open: newBatch(), kick: make(chan struct{}, 1)}
}

// commitLocked stamps changes, applies them to the working state and adds
// them to the open batch. It fails, changing nothing, when this master
// does not lead or a change is malformed; whether the changes become
// durable is known later (durableLocked). m.mu must be held for writing.
func (m *Master) commitLocked(changes ...events.Change) error {
	if !m.actingLocked() {
		return ErrNotLeader
	}
	if len(changes) == 0 {
		return nil
	}
	now := m.cfg.Now().UTC()
	evs := make([]events.Event, len(changes))
	for i, c := range changes {
		e := c.Stamp(m.state, m.epoch, now)
		e.Seq += uint64(i) // each follows the one before it
		// Check every event before any applies: all of them or none.
		if err := e.Validate(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		evs[i] = e
	}
	// The committer takes the open batch under pipe.mu alone: hold it
	// while this call's events go in, so they are in one batch and a
	// failed one takes back only its own.
	m.pipe.mu.Lock()
	defer m.pipe.mu.Unlock()
	b := m.pipe.open
	if b.start.IsZero() {
		b.start = time.Now()
	}
	for i, e := range evs {
		var prev *events.Task
		if t, ok := m.state.Tasks[e.ID]; ok && (e.Type == events.TaskUpdated || e.Type == events.TaskRemoved) {
			prev = &t
		}
		u, err := m.state.ApplyUndoable(e)
		if err != nil {
			m.revertLocked(b, len(b.evs)-i) // this call's, newest first
			return fmt.Errorf("commit %s %s: %w", e.Type, e.ID, err)
		}
		b.evs, b.undos = append(b.evs, e), append(b.undos, u)
		m.noteChangeLocked(e, prev)
	}
	m.kickCommit()
	return nil
}

// ackWhenDurableLocked runs ack once everything staged so far is durable.
func (m *Master) ackWhenDurableLocked(ack func()) {
	m.pipe.mu.Lock()
	m.pipe.open.acks = append(m.pipe.open.acks, ack)
	m.pipe.mu.Unlock()
	m.kickCommit()
}

// durableLocked is what to wait on, after unlocking, for everything
// staged so far to be durable.
func (m *Master) durableLocked() durability {
	m.pipe.mu.Lock()
	defer m.pipe.mu.Unlock()
	switch {
	case !m.pipe.open.empty():
		return durability{m.pipe.open}
	case m.pipe.inflight != nil:
		return durability{m.pipe.inflight}
	}
	return durability{}
}

// commit is commitLocked for callers that do not hold the lock; it returns
// once the changes are durable, or why they are not.
func (m *Master) commit(changes ...events.Change) error {
	m.mu.Lock()
	err := m.commitLocked(changes...)
	d := m.durableLocked()
	m.mu.Unlock()
	if err != nil {
		return err
	}
	return d.wait()
}

// writeLocked takes m.mu for a change made on behalf of a caller; the
// function it returns unlocks and then, unless *err is set, waits for the
// changes to be durable and sets *err when they are not. Use as
//
//	func (m *Master) X(...) (_ T, err error) { defer m.writeLocked()(&err); ... }
func (m *Master) writeLocked() func(*error) {
	m.mu.Lock()
	return func(err *error) {
		d := m.durableLocked()
		m.mu.Unlock()
		if *err == nil {
			*err = d.wait()
		}
	}
}

func (m *Master) kickCommit() {
	select {
	case m.pipe.kick <- struct{}{}:
	default:
	}
}

// revertLocked takes the newest n events of b back out of the working
// state and out of b. m.mu held, and pipe.mu if b is the open batch.
func (m *Master) revertLocked(b *batch, n int) {
	for i := len(b.evs) - 1; i >= len(b.evs)-n; i-- {
		m.state.Revert(b.undos[i])
	}
	if n > 0 {
		m.runtime.servicePorts = nil // counted anew from the state when next needed
		m.runtime.groupAppRefs = nil
		m.live.changedAll() // a settled report may have matched them
	}
	k := len(b.evs) - n
	b.evs, b.undos = b.evs[:k], b.undos[:k]
}

// commitLoop is the committer: it runs while this master leads and
// stops with ctx, failing what it has not stored. run starts each request
// to an agent that a durable batch releases.
//
// It stores one batch while the batch before it is published (on a
// goroutine of its own, in order): publishing a batch of a scale-up (its
// SSE frames, NATS messages, read view, acks and launches) takes about as
// long as storing it, and one after the other left the store idle half
// the time. At most one batch is stored and one published at once.
func (m *Master) commitLoop(ctx context.Context, run func(func(context.Context))) {
	toPublish := make(chan storedBatch)
	published := make(chan struct{})
	go func() {
		defer close(published)
		for sb := range toPublish {
			m.publishBatch(sb, run)
		}
	}()
	defer func() {
		// What was stored is published before the committer is done.
		close(toPublish)
		<-published
	}()
	var last *batch // the last batch stored whole, published or on its way
	for {
		select {
		case <-ctx.Done():
			// What was staged but never stored comes out of the state:
			// until a new term reloads it, this master's reads must not
			// show changes whose callers were told they failed.
			m.mu.Lock()
			m.pipe.mu.Lock()
			open := m.pipe.open
			m.revertLocked(open, len(open.evs))
			m.pipe.open, m.pipe.inflight = newBatch(), last
			m.pipe.mu.Unlock()
			m.mu.Unlock()
			open.finish(ErrNotLeader)
			return
		case <-m.pipe.kick:
		}
		m.pipe.mu.Lock()
		if !m.pipe.takeable() {
			m.pipe.mu.Unlock()
			continue
		}
		b := m.pipe.open
		m.pipe.open, m.pipe.inflight = newBatch(), b
		m.pipe.mu.Unlock()
		sb := m.storeOne(b, last)
		if sb.err == nil {
			last = b
		}
		toPublish <- sb
	}
}

// storedBatch is a batch on its way from the store to the publisher: all
// of it stored, or, when err is set, its first stored events, with what
// was staged behind it (later), both already taken back out of the
// working state.
type storedBatch struct {
	b      *batch
	stored int
	err    error
	later  *batch
	// takenBack counts the events of b and later taken back.
	takenBack int
}

// storeOne stores b. A write that fails takes the rest of b, and what was
// staged since, back out of the working state at once, before the next
// batch is taken; last is the batch before b, which callers who staged
// nothing since wait on.
func (m *Master) storeOne(b *batch, last *batch) storedBatch {
	stored, err := m.storeBatch(b.evs)
	sb := storedBatch{b: b, stored: stored, err: err}
	if err == nil {
		return sb
	}
	// Newest first: what was staged since, then this batch's rest.
	m.mu.Lock()
	m.pipe.mu.Lock()
	sb.later = m.pipe.open
	m.pipe.open, m.pipe.inflight = newBatch(), last
	sb.takenBack = len(sb.later.evs) + len(b.evs) - stored
	m.revertLocked(sb.later, len(sb.later.evs))
	m.pipe.mu.Unlock()
	m.revertLocked(b, len(b.evs)-stored)
	m.rebuildInFlightLocked()
	m.markAllDirtyLocked()
	m.mu.Unlock()
	return sb
}

// publishBatch publishes what of a batch was stored, then finishes it:
// with the store's error, or by sending its acks and agent requests.
func (m *Master) publishBatch(sb storedBatch, run func(func(context.Context))) {
	b := sb.b
	m.publishStored(b.evs[:sb.stored])
	// Before anyone waiting on the batch is told: a caller's next read
	// shows its write.
	m.reads.apply(b.evs[:sb.stored])
	if sb.stored > 0 {
		m.metrics.commit.Observe(time.Since(b.start).Seconds())
		m.metrics.batchEvents.Observe(float64(sb.stored))
	}
	if sb.err != nil {
		m.log.Warn("store write failed; its changes are taken back", "events", sb.takenBack, "err", sb.err)
		sb.later.finish(fmt.Errorf("an earlier change was not stored: %w", sb.err))
		b.finish(sb.err)
		m.kickReconcile()
		return
	}
	for _, ack := range b.acks {
		ack()
	}
	for _, send := range m.agentRequests(&b.out) {
		run(send)
	}
	b.finish(nil)
}

// storeBatch makes evs durable and returns how many of them are.
func (m *Master) storeBatch(evs []events.Event) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	n, err := m.cfg.Store.AppendAll(evs)
	if err != nil {
		e := evs[min(n, len(evs)-1)]
		return n, fmt.Errorf("commit %s %s: %w", e.Type, e.ID, err)
	}
	return n, nil
}

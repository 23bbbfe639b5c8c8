package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/events/natsbus"
	"github.com/atollhq/atoll/internal/natsauth"
)

// noTicks is the sync timeout of tests that send no sync tick: long enough
// that only the stream itself can cause a resync.
const noTicks = time.Hour

// wantResyncs checks the follower's resync count.
func wantResyncs(t *testing.T, f *events.Follower, want uint64) {
	t.Helper()
	if got := f.Resyncs(); got != want {
		t.Errorf("Resyncs() = %d, want %d", got, want)
	}
}

func TestFollowerStartsLate(t *testing.T) {
	l := eventstest.NewLeader()
	eventstest.Churn(l, 500)

	f, m := eventstest.Follow(t, l, noTicks)
	m.WaitEqual(t, l)
	if !f.Synced() {
		t.Errorf("Synced() = false with the leader's state")
	}
	eventstest.Churn(l, 50)
	m.WaitEqual(t, l)

	wantResyncs(t, f, 0)
	if m.Resets() != 1 || m.AppliedCount() != 50 {
		t.Errorf("handler had %d resets and %d events, want 1 and 50", m.Resets(), m.AppliedCount())
	}
}

// A follower that starts while the leader commits gets its snapshot in the
// middle of the stream: subscribing first means nothing falls in between.
func TestFollowerStartsDuringCommits(t *testing.T) {
	l := eventstest.NewLeader()
	stop := churnInBackground(t, l)

	f, m := eventstest.Follow(t, l, noTicks)
	eventstest.WaitFor(t, eventstest.DefaultWait, func() error {
		if m.AppliedCount() < 100 {
			return fmt.Errorf("follower applied %d events since its snapshot, waiting for 100", m.AppliedCount())
		}
		return nil
	})
	stop()
	m.WaitEqual(t, l)
	wantResyncs(t, f, 0)
}

// churnInBackground commits changes until stop is called (or the test
// ends), and returns once the leader is at seq 100 or more.
func churnInBackground(t *testing.T, l *eventstest.Leader) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				eventstest.Churn(l, 8)
			}
		}
	})
	var once sync.Once
	stop = func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
	t.Cleanup(stop)
	eventstest.WaitFor(t, eventstest.DefaultWait, func() error {
		if seq := l.State().Seq; seq < 100 {
			return fmt.Errorf("leader at seq %d, waiting for 100", seq)
		}
		return nil
	})
	return stop
}

// An event lost on the way is noticed by the gap before the next one.
func TestFollowerGapRevealedByNextEvent(t *testing.T) {
	l := eventstest.NewLeader()
	eventstest.Churn(l, 20)
	f, m := eventstest.Follow(t, l, noTicks)
	m.WaitEqual(t, l)

	l.DropNext()
	l.Commit(events.PutApp(eventstest.App("/lost", 1)))
	l.Commit(events.PutApp(eventstest.App("/after", 1)))
	m.WaitEqual(t, l)
	wantResyncs(t, f, 1)
	if m.Resets() != 2 {
		t.Errorf("handler had %d resets, want 2", m.Resets())
	}
}

// When the last event before a quiet period is lost, only the sync tick
// tells the follower it is behind.
func TestFollowerLastEventRevealedBySyncTick(t *testing.T) {
	l := eventstest.NewLeader()
	eventstest.Churn(l, 20)
	f, m := eventstest.Follow(t, l, noTicks)
	m.WaitEqual(t, l)

	l.DropNext()
	l.Commit(events.PutApp(eventstest.App("/lost", 1)))
	if err := m.Matches(l.State()); err == nil {
		t.Fatalf("follower has an event it never received")
	}
	l.Tick()
	m.WaitEqual(t, l)
	wantResyncs(t, f, 1)

	// A tick at the follower's own seq changes nothing. The event after it
	// shows the tick was handled.
	l.Tick()
	l.Commit(events.PutApp(eventstest.App("/after", 1)))
	m.WaitEqual(t, l)
	wantResyncs(t, f, 1)
}

func TestFollowerEpochChange(t *testing.T) {
	l := eventstest.NewLeader()
	eventstest.Churn(l, 20)
	f, m := eventstest.Follow(t, l, noTicks)
	m.WaitEqual(t, l)

	l.NewEpoch()
	eventstest.Churn(l, 10)
	m.WaitEqual(t, l)
	wantResyncs(t, f, 1)
	if got := m.State().Leader; got == nil || got.Epoch != 2 || got.ID != "master-2" {
		t.Errorf("leader = %+v, want master-2 in epoch 2", got)
	}
}

// Events that do not follow the state but cannot be newer than it are
// ignored without a resync: a deposed leader's, duplicates, old ticks.
func TestFollowerIgnoresStaleEvents(t *testing.T) {
	l := eventstest.NewLeader()
	eventstest.Churn(l, 20)
	l.NewEpoch()
	eventstest.Churn(l, 5)
	f, m := eventstest.Follow(t, l, noTicks)
	m.WaitEqual(t, l)

	last := l.Commit(events.PutApp(eventstest.App("/last", 1)))
	deposed := events.DeleteApp("/last").Stamp(l.State(), 1, eventstest.T0)
	l.Inject(deposed)
	l.Inject(events.Event{Epoch: 1, Seq: last.Seq + 5, Type: events.Sync})
	l.Inject(last)
	l.Inject(events.Event{Epoch: 2, Seq: last.Seq - 3, Type: events.Sync})
	l.Commit(events.PutApp(eventstest.App("/after", 1)))
	m.WaitEqual(t, l)
	wantResyncs(t, f, 0)
}

// Sync ticks keep a quiet follower in place; when they stop, the follower
// resyncs on its own, and that alone recovers a lost last event.
func TestFollowerMissedSyncTick(t *testing.T) {
	const syncTimeout = 150 * time.Millisecond
	l := eventstest.NewLeader()
	eventstest.Churn(l, 20)
	stopTicks := l.Ticking(10 * time.Millisecond)
	defer stopTicks()
	f, m := eventstest.Follow(t, l, syncTimeout)
	m.WaitEqual(t, l)

	// Proving an absence takes time: several timeouts with ticks flowing.
	time.Sleep(4 * syncTimeout)
	wantResyncs(t, f, 0)

	stopTicks()
	l.DropNext()
	l.Commit(events.PutApp(eventstest.App("/lost", 1)))
	m.WaitEqual(t, l)
	if f.Resyncs() == 0 {
		t.Errorf("caught up without a resync")
	}
}

// A follower waits for a leader that refuses snapshots and never shows a
// state before it has one.
func TestFollowerRetriesSnapshot(t *testing.T) {
	l := eventstest.NewLeader()
	eventstest.Churn(l, 20)
	l.FailSnapshots(errors.New("not the leader"))
	f, m := eventstest.Follow(t, l, noTicks)

	eventstest.WaitFor(t, eventstest.DefaultWait, func() error {
		if n := l.Snapshots(); n < 3 {
			return fmt.Errorf("%d snapshot requests, want 3", n)
		}
		return nil
	})
	if f.Synced() || m.State() != nil {
		t.Fatalf("follower synced without a snapshot")
	}
	l.FailSnapshots(nil)
	m.WaitEqual(t, l)
	if !f.Synced() {
		t.Errorf("Synced() = false with the leader's state")
	}
	wantResyncs(t, f, 0)
}

// gated is a Mirror whose first Applied blocks until the gate opens, so the
// follower's buffer fills up behind it.
type gated struct {
	*eventstest.Mirror
	entered, gate chan struct{}
	once          sync.Once
}

func (h *gated) Applied(s *events.State, e events.Event) {
	h.once.Do(func() {
		close(h.entered)
		<-h.gate
	})
	h.Mirror.Applied(s, e)
}

// Events dropped because the follower's buffer is full are not guessed at:
// the follower resyncs.
func TestFollowerBufferOverflow(t *testing.T) {
	l := eventstest.NewLeader()
	h := &gated{Mirror: &eventstest.Mirror{}, entered: make(chan struct{}), gate: make(chan struct{})}
	f := &events.Follower{Source: l, Handler: h, SyncTimeout: noTicks, Buffer: 1024}
	eventstest.Start(t, f)
	var open sync.Once
	t.Cleanup(func() { open.Do(func() { close(h.gate) }) }) // before the follower is stopped
	h.WaitEqual(t, l)

	l.Commit(events.PutApp(eventstest.App("/blocks", 1)))
	select {
	case <-h.entered:
	case <-time.After(eventstest.DefaultWait):
		t.Fatalf("the follower never delivered the event")
	}
	eventstest.Churn(l, 10000) // more than the follower buffers
	open.Do(func() { close(h.gate) })
	h.WaitEqual(t, l)
	wantResyncs(t, f, 1)
}

// The same recoveries over a real NATS server, through natsbus.Publisher,
// natsbus.ServeSnapshots and natsbus.Source, plus messages on the event
// subjects that are not events.
func TestFollowerOverNATS(t *testing.T) {
	srv := eventstest.StartNATS(t)
	subj := events.Subjects{}
	l := eventstest.NewLeader()
	eventstest.Churn(l, 100)
	leaderNC := eventstest.Connect(t, srv)
	l.Serve(t, leaderNC, subj)

	var bad atomic.Int32
	src := &natsbus.Source{NC: srv.ConnectAs(t, natsauth.RoleObserver, "follower"), Subjects: subj, OnBadEvent: func(error) { bad.Add(1) }}
	f, m := eventstest.Follow(t, src, noTicks)
	m.WaitEqual(t, l)
	wantResyncs(t, f, 0)

	t.Log("lost event, revealed by the next")
	l.DropNext()
	eventstest.Churn(l, 3)
	m.WaitEqual(t, l)
	wantResyncs(t, f, 1)

	t.Log("lost last event, revealed by a sync tick")
	l.DropNext()
	l.Commit(events.PutApp(eventstest.App("/lost", 1)))
	l.Tick()
	m.WaitEqual(t, l)
	wantResyncs(t, f, 2)

	t.Log("new epoch")
	l.NewEpoch()
	eventstest.Churn(l, 5)
	m.WaitEqual(t, l)
	wantResyncs(t, f, 3)

	t.Log("messages that are not events")
	noTask, _ := json.Marshal(events.Event{Epoch: l.Epoch(), Seq: l.State().Seq + 1, Type: events.TaskUpdated, ID: "x"})
	for _, data := range [][]byte{[]byte("{not json"), noTask, nil} {
		if err := leaderNC.Publish(subj.Event(events.TaskUpdated), data); err != nil {
			t.Fatal(err)
		}
	}
	eventstest.Churn(l, 5)
	m.WaitEqual(t, l)
	if got := bad.Load(); got != 3 {
		t.Errorf("OnBadEvent called %d times, want 3", got)
	}
	wantResyncs(t, f, 3)
}

// Over NATS too, a follower that starts during commits needs no resync:
// NATSSource.Subscribe makes the subscription known before the snapshot.
func TestFollowerOverNATSStartsDuringCommits(t *testing.T) {
	srv := eventstest.StartNATS(t)
	l := eventstest.NewLeader()
	l.Serve(t, eventstest.Connect(t, srv), events.Subjects{})
	stop := churnInBackground(t, l)

	f, m := eventstest.Follow(t, &natsbus.Source{NC: srv.ConnectAs(t, natsauth.RoleObserver, "follower")}, noTicks)
	eventstest.WaitFor(t, eventstest.DefaultWait, func() error {
		if m.AppliedCount() < 100 {
			return fmt.Errorf("follower applied %d events since its snapshot, waiting for 100", m.AppliedCount())
		}
		return nil
	})
	stop()
	m.WaitEqual(t, l)
	wantResyncs(t, f, 0)
}

// hookedSource runs hook once, after the leader's first snapshot is taken
// and before the follower gets it.
type hookedSource struct {
	*eventstest.Leader
	once sync.Once
	hook func()
}

func (s *hookedSource) Snapshot(ctx context.Context) (events.Snapshot, error) {
	snap, err := s.Leader.Snapshot(ctx)
	s.once.Do(s.hook)
	return snap, err
}

// Events dropped while the snapshot is on its way are newer than it: the
// follower must not forget that it lost them.
func TestFollowerBufferOverflowDuringSnapshot(t *testing.T) {
	l := eventstest.NewLeader()
	src := &hookedSource{Leader: l, hook: func() { eventstest.Churn(l, 10000) }}
	m := &eventstest.Mirror{}
	f := &events.Follower{Source: src, Handler: m, SyncTimeout: noTicks, Buffer: 1024}
	eventstest.Start(t, f)
	m.WaitEqual(t, l)
	wantResyncs(t, f, 1)
}

// idleCounter counts Idle calls and the seq each saw, on top of a Mirror.
type idleCounter struct {
	*gated
	mu    sync.Mutex
	calls int
	last  uint64
}

func (h *idleCounter) Idle(s *events.State) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	h.last = s.Seq
}

func (h *idleCounter) seen() (int, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls, h.last
}

// A burst of events ends in one Idle call with the burst's last state.
func TestFollowerIdleOncePerBurst(t *testing.T) {
	l := eventstest.NewLeader()
	h := &idleCounter{gated: &gated{Mirror: &eventstest.Mirror{}, entered: make(chan struct{}), gate: make(chan struct{})}}
	f := &events.Follower{Source: l, Handler: h, SyncTimeout: noTicks}
	eventstest.Start(t, f)
	var open sync.Once
	t.Cleanup(func() { open.Do(func() { close(h.gate) }) })
	h.WaitEqual(t, l)
	eventstest.WaitFor(t, eventstest.DefaultWait, func() error {
		if n, _ := h.seen(); n != 1 {
			return fmt.Errorf("%d Idle calls after the snapshot, want 1", n)
		}
		return nil
	})

	l.Commit(events.PutApp(eventstest.App("/blocks", 1)))
	<-h.entered // the follower is inside Applied: the rest of the burst queues
	eventstest.Churn(l, 200)
	open.Do(func() { close(h.gate) })
	h.WaitEqual(t, l)
	eventstest.WaitFor(t, eventstest.DefaultWait, func() error {
		if n, last := h.seen(); n != 2 || last != l.State().Seq {
			return fmt.Errorf("%d Idle calls, last at seq %d; want 2, at %d", n, last, l.State().Seq)
		}
		return nil
	})
}

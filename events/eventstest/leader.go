package eventstest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/nats-io/nats.go"
)

// T0 is the fake leader's clock at seq 0: the event with seq n happens at
// T0 + n seconds, so runs are reproducible.
var T0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Leader is an in-memory stand-in for the master's state and event stream:
// it stamps and applies changes and delivers the events to its subscribers,
// and it implements events.Source so a Follower can read it with no network.
// Tests make it misbehave on purpose: drop deliveries, change epoch, inject
// stale events, refuse snapshots. It is safe for concurrent use.
//
// Deliveries happen with the leader's lock held, in commit order, and a
// snapshot is taken under the same lock, so a subscriber has received every
// event the snapshot contains (as NATS guarantees once a subscription is
// flushed). Subscribers must therefore not block or call back into the Leader.
type Leader struct {
	mu        sync.Mutex
	state     *events.State
	epoch     uint64
	subs      map[int]func(events.Event)
	nextSub   int
	drop      int
	snapErr   error
	snapshots int
}

// NewLeader returns a leader in epoch 1 whose first event (seq 1) records
// itself as the leader.
func NewLeader() *Leader {
	l := &Leader{state: events.NewState(), subs: map[int]func(events.Event){}}
	l.NewEpoch()
	return l
}

// Commit stamps c as the next event, applies it and delivers it. A change
// the state rejects is a bug in the test: Commit panics.
func (l *Leader) Commit(c events.Change) events.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.commitLocked(c)
}

func (l *Leader) commitLocked(c events.Change) events.Event {
	e := c.Stamp(l.state, l.epoch, T0.Add(time.Duration(l.state.Seq+1)*time.Second))
	if err := l.state.Apply(e); err != nil {
		panic(fmt.Sprintf("eventstest.Leader: commit %s %s: %v", c.Type, c.ID, err))
	}
	l.deliverLocked(e)
	return e
}

// NewEpoch starts the next epoch, as a newly elected master does, by
// committing its own leader record.
func (l *Leader) NewEpoch() events.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.epoch++
	return l.commitLocked(events.PutLeader(events.Leader{
		ID:       fmt.Sprintf("master-%d", l.epoch),
		Hostname: fmt.Sprintf("master-%d.test", l.epoch),
		IP:       "127.0.0.1",
		Port:     8080,
		Epoch:    l.epoch,
	}))
}

// Tick delivers a sync tick with the current (epoch, seq) and returns it.
func (l *Leader) Tick() events.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := events.Event{Epoch: l.epoch, Seq: l.state.Seq, Type: events.Sync, Time: T0.Add(time.Duration(l.state.Seq) * time.Second)}
	l.deliverLocked(e)
	return e
}

// Ticking calls Tick every interval until stop is called; stop waits for
// the ticking goroutine to end.
func (l *Leader) Ticking(every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				l.Tick()
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// Inject delivers e to the subscribers as it is, without applying it: for
// stale, duplicate or otherwise bogus events. DropNext applies to it too.
func (l *Leader) Inject(e events.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deliverLocked(e)
}

// DropNext makes the next delivery (event, tick or injection) reach no
// subscriber, as if the network lost it. Calls add up.
func (l *Leader) DropNext() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drop++
}

func (l *Leader) deliverLocked(e events.Event) {
	if l.drop > 0 {
		l.drop--
		return
	}
	for _, deliver := range l.subs {
		deliver(e)
	}
}

// FailSnapshots makes Snapshot return err until called again with nil.
func (l *Leader) FailSnapshots(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.snapErr = err
}

// Snapshots counts Snapshot calls, failed ones included.
func (l *Leader) Snapshots() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.snapshots
}

// State returns a copy of the leader's state.
func (l *Leader) State() *events.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state.Clone()
}

// Epoch returns the current epoch.
func (l *Leader) Epoch() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// Subscribe implements events.Source.
func (l *Leader) Subscribe(deliver func(events.Event)) (stop func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := l.nextSub
	l.nextSub++
	l.subs[id] = deliver
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.subs, id)
	}, nil
}

// Snapshot implements events.Source: it returns a clone of the state.
func (l *Leader) Snapshot(ctx context.Context) (*events.State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.snapshots++
	if l.snapErr != nil {
		return nil, l.snapErr
	}
	return l.state.Clone(), nil
}

// Serve puts the leader on NATS as the master does: every delivery is
// published with an events.Publisher on nc, and snapshot requests are
// answered with events.ServeSnapshots, ready when Serve returns. Both stop
// when the test ends.
func (l *Leader) Serve(t testing.TB, nc *nats.Conn, subj events.Subjects) {
	t.Helper()
	pub := &events.Publisher{NC: nc, Subjects: subj}
	stop, _ := l.Subscribe(func(e events.Event) {
		if err := pub.Publish(e); err != nil {
			t.Errorf("eventstest.Leader: %v", err)
		}
	})
	sub, err := events.ServeSnapshots(nc, subj, func() (*events.State, error) {
		return l.Snapshot(context.Background())
	})
	if err == nil {
		// Followers dial in on other connections: the server must know
		// the responder before Serve returns.
		err = nc.Flush()
	}
	if err != nil {
		stop()
		t.Fatalf("eventstest.Leader: %v", err)
	}
	t.Cleanup(func() {
		_ = sub.Unsubscribe()
		stop()
	})
}

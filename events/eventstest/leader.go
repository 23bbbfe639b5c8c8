package eventstest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/natsbus"
	"github.com/nats-io/nats.go"
)

// T0 is the fake leader's clock at seq 0: the event with seq n happens at
// T0 + n seconds, so runs are reproducible.
var T0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Leader is an in-memory stand-in for the master's state and event stream:
// it stamps and applies changes and delivers the events to its subscribers,
// and it implements events.Source so a Follower can read it with no network.
// Like the master, it delivers events as events.Encoder encodes them
// (redacted, with the digest chain over those bytes on its ticks and
// snapshots). Tests make it misbehave on purpose: drop deliveries, change
// epoch, inject stale or forged events, refuse snapshots. It is safe for
// concurrent use.
//
// Deliveries happen with the leader's lock held, in commit order, and a
// snapshot is taken under the same lock, so a subscriber has received every
// event the snapshot contains (as NATS guarantees once a subscription is
// flushed). Subscribers must therefore not block or call back into the Leader.
type Leader struct {
	mu        sync.Mutex
	state     *events.State
	enc       events.Encoder
	epoch     uint64
	subs      map[int]func(events.Event, []byte)
	nextSub   int
	drop      int
	snapErr   error
	snapshots int
}

// NewLeader returns a leader in epoch 1 whose first event (seq 1) records
// itself as the leader.
func NewLeader() *Leader {
	l := &Leader{state: events.NewState(), subs: map[int]func(events.Event, []byte){}}
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
	data, err := l.enc.Event(e)
	if err != nil {
		panic(fmt.Sprintf("eventstest.Leader: %v", err))
	}
	l.deliverLocked(e, data)
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

// Tick delivers a sync tick with the current (epoch, seq) and the digest
// there, and returns it.
func (l *Leader) Tick() events.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, data, err := l.enc.Sync(l.epoch, l.state.Seq, T0.Add(time.Duration(l.state.Seq)*time.Second))
	if err != nil {
		panic(fmt.Sprintf("eventstest.Leader: %v", err))
	}
	l.deliverLocked(e, data)
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

// Inject delivers e to the subscribers as it is, encoded as the leader
// encodes its events but without applying it or hashing it into the
// leader's chain: for stale, duplicate, forged or otherwise bogus events.
// DropNext applies to it too.
func (l *Leader) Inject(e events.Event) {
	data, err := events.EncodeEvent(e)
	if err != nil {
		panic(fmt.Sprintf("eventstest.Leader: inject: %v", err))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deliverLocked(e, data)
}

// DropNext makes the next delivery (event, tick or injection) reach no
// subscriber, as if the network lost it. Calls add up.
func (l *Leader) DropNext() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drop++
}

// deliverLocked hands e to the subscribers as its bytes decode: redacted.
func (l *Leader) deliverLocked(e events.Event, data []byte) {
	if l.drop > 0 {
		l.drop--
		return
	}
	e = e.Redacted()
	for _, deliver := range l.subs {
		deliver(e, data)
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

// State returns a copy of the leader's state, secrets included: what a
// follower holds is its Redacted form.
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
func (l *Leader) Subscribe(deliver func(events.Event, []byte)) (stop func(), err error) {
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

// Snapshot implements events.Source: it returns a redacted clone of the
// state, as natsbus.ServeSnapshots sends it, with the digest at it.
func (l *Leader) Snapshot(ctx context.Context) (events.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return events.Snapshot{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.snapshots++
	if l.snapErr != nil {
		return events.Snapshot{}, l.snapErr
	}
	return events.Snapshot{
		State:  l.state.Redacted().Clone(),
		Digest: l.enc.Digest(l.state.Epoch, l.state.Seq),
	}, nil
}

// Serve puts the leader on NATS as the master does: every delivery is
// published on its event subject on nc, as the bytes subscribers get in
// memory, and snapshot requests are answered with natsbus.ServeSnapshots,
// ready when Serve returns. Both stop when the test ends.
func (l *Leader) Serve(t testing.TB, nc *nats.Conn, subj events.Subjects) {
	t.Helper()
	stop, _ := l.Subscribe(func(e events.Event, data []byte) {
		if err := nc.Publish(subj.Event(e.Type), data); err != nil {
			t.Errorf("eventstest.Leader: publish %s: %v", e.SSEID(), err)
		}
	})
	sub, err := natsbus.ServeSnapshots(nc, subj, func() (events.Snapshot, error) {
		return l.Snapshot(context.Background())
	}, nil)
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

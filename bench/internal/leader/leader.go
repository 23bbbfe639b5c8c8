// Package leader is the benchmarks' synthetic cluster leader.
package leader

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/natsbus"
)

// Leader is a synthetic cluster leader: it commits changes to its own
// state and publishes them on NATS exactly as the master does (same
// Publisher, same snapshot server, sync ticks every second), so the
// sidecar under test follows the real event path without real processes
// behind it.
type Leader struct {
	mu    sync.Mutex
	state *events.State
	pub   *natsbus.Publisher
	snaps *nats.Subscription
}

// New starts answering snapshot requests on nc and commits the leader record.
func New(nc *nats.Conn) (*Leader, error) {
	l := &Leader{state: events.NewState(), pub: &natsbus.Publisher{NC: nc}}
	sub, err := natsbus.ServeSnapshots(nc, events.Subjects{}, func() (events.Snapshot, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return events.Snapshot{State: l.state.Clone(), Digest: l.pub.Digest(l.state.Epoch, l.state.Seq)}, nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("bench leader: %w", err)
	}
	l.snaps = sub
	// Followers dial in on other connections: the server must know the
	// responder before anyone asks.
	if err := nc.Flush(); err != nil {
		return nil, fmt.Errorf("bench leader: flush: %w", err)
	}
	err = l.Commit(events.PutLeader(events.Leader{ID: "bench", Hostname: "bench", IP: "127.0.0.1", Port: 8080, Epoch: 1}))
	return l, err
}

// Commit stamps, applies and publishes changes in order; it returns when
// the events are on their way to NATS.
func (l *Leader) Commit(cs ...events.Change) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range cs {
		e := c.Stamp(l.state, 1, time.Now().UTC())
		if err := l.state.Apply(e); err != nil {
			return fmt.Errorf("bench leader: commit %s %s: %w", c.Type, c.ID, err)
		}
		if err := l.pub.Publish(e); err != nil {
			return fmt.Errorf("bench leader: %w", err)
		}
	}
	return nil
}

// Tick publishes a sync tick every second until ctx ends.
func (l *Leader) Tick(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.mu.Lock()
			_ = l.pub.PublishSync(l.state.Epoch, l.state.Seq, time.Now())
			l.mu.Unlock()
		}
	}
}

// Close stops answering snapshot requests.
func (l *Leader) Close() { _ = l.snaps.Unsubscribe() }

// Seq is the last committed event's seq.
func (l *Leader) Seq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state.Seq
}

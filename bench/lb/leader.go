package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// leader is a synthetic cluster leader: it commits changes to its own
// state and publishes them on NATS exactly as the master does (same
// Publisher, same snapshot server, sync ticks every second), so the
// sidecar under test follows the real event path.
type leader struct {
	mu    sync.Mutex
	state *events.State
	pub   *events.Publisher
	snaps *nats.Subscription
}

func newLeader(nc *nats.Conn) (*leader, error) {
	l := &leader{state: events.NewState(), pub: &events.Publisher{NC: nc}}
	sub, err := events.ServeSnapshots(nc, events.Subjects{}, func() (*events.State, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.state.Clone(), nil
	})
	if err != nil {
		return nil, fmt.Errorf("bench leader: %w", err)
	}
	l.snaps = sub
	// Followers dial in on other connections: the server must know the
	// responder before anyone asks.
	if err := nc.Flush(); err != nil {
		return nil, fmt.Errorf("bench leader: flush: %w", err)
	}
	err = l.commit(events.PutLeader(events.Leader{ID: "bench", Hostname: "bench", IP: "127.0.0.1", Port: 8080, Epoch: 1}))
	return l, err
}

// commit stamps, applies and publishes changes in order; it returns when
// the events are on their way to NATS.
func (l *leader) commit(cs ...events.Change) error {
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

// tick publishes a sync tick every second until ctx ends.
func (l *leader) tick(ctx context.Context) {
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

// close stops answering snapshot requests.
func (l *leader) close() { _ = l.snaps.Unsubscribe() }

// seq is the last committed event's seq.
func (l *leader) seq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state.Seq
}

package natsbus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// Source is the events.Source over a NATS connection: the leader's event
// subjects, and snapshots by request.
type Source struct {
	NC       *nats.Conn
	Subjects events.Subjects
	// OnBadEvent, if set, hears about events that failed to decode.
	OnBadEvent func(error)
}

// Subscribe implements events.Source.
func (s *Source) Subscribe(deliver func(events.Event, []byte)) (func(), error) {
	sub, err := s.NC.Subscribe(s.Subjects.AllEvents(), func(m *nats.Msg) {
		e, err := events.DecodeEvent(m.Data)
		if err != nil {
			if s.OnBadEvent != nil {
				s.OnBadEvent(err)
			}
			return
		}
		deliver(e, m.Data)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", s.Subjects.AllEvents(), err)
	}
	// Events are small and come in bursts: let NATS buffer generously
	// rather than declare us a slow consumer.
	_ = sub.SetPendingLimits(1<<20, 256<<20)
	// The subscription must be known to the server before we ask for a
	// snapshot, or an event could fall between the two.
	if err := s.NC.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe %s: flush: %w", s.Subjects.AllEvents(), err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Snapshot implements events.Source.
func (s *Source) Snapshot(ctx context.Context) (events.Snapshot, error) {
	m, err := s.NC.RequestWithContext(ctx, s.Subjects.Snapshot(), nil)
	if err != nil {
		return events.Snapshot{}, fmt.Errorf("request snapshot: %w", err)
	}
	return decodeSnapshot(m.Data)
}

package events

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
)

// Publisher sends the leader's events on NATS.
type Publisher struct {
	NC       *nats.Conn
	Subjects Subjects
}

// Publish sends one stored event.
func (p *Publisher) Publish(e Event) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", e.SSEID(), err)
	}
	if err := p.NC.Publish(p.Subjects.Event(e.Type), data); err != nil {
		return fmt.Errorf("publish event %s: %w", e.SSEID(), err)
	}
	return nil
}

// PublishSync sends the periodic (epoch, seq) tick.
func (p *Publisher) PublishSync(epoch, seq uint64, now time.Time) error {
	return p.Publish(Event{Epoch: epoch, Seq: seq, Type: Sync, Time: now})
}

// ServeSnapshots answers snapshot requests with whatever snap returns, until
// the returned subscription is drained. snap must return a state that is not
// mutated afterwards (a clone) or already-encoded consistent bytes.
func ServeSnapshots(nc *nats.Conn, subj Subjects, snap func() (*State, error)) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(subj.Snapshot(), func(m *nats.Msg) {
		if !IsInbox(m.Reply) {
			return // see IsInbox: answer nowhere but an inbox
		}
		var reply SnapshotReply
		st, err := snap()
		if err != nil {
			reply.Error = err.Error()
		} else {
			reply.State = st
		}
		data, err := encodeSnapshot(reply)
		if err != nil {
			data, _ = encodeSnapshot(SnapshotReply{Error: err.Error()})
		}
		_ = m.Respond(data)
	})
	if err != nil {
		return nil, fmt.Errorf("serve snapshots on %s: %w", subj.Snapshot(), err)
	}
	return sub, nil
}

// Snapshots are gzipped JSON: a cluster's state is far larger than one
// event and NATS limits a message to 1 MB by default.
func encodeSnapshot(r SnapshotReply) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(r); err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeSnapshot(data []byte) (*State, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decompress snapshot: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("decompress snapshot: %w", err)
	}
	var r SnapshotReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if r.Error != "" {
		return nil, fmt.Errorf("snapshot refused by leader: %s", r.Error)
	}
	if r.State == nil {
		return nil, fmt.Errorf("snapshot reply without state")
	}
	return r.State.Normalize(), nil
}

// Source is what a follower reads: a stream of events (sync ticks included)
// in publish order, and snapshots on demand.
type Source interface {
	// Subscribe calls deliver for every event until stop is called.
	// deliver must not block.
	Subscribe(deliver func(Event)) (stop func(), err error)
	Snapshot(ctx context.Context) (*State, error)
}

// NATSSource is the Source over a NATS connection.
type NATSSource struct {
	NC       *nats.Conn
	Subjects Subjects
	// OnBadEvent, if set, hears about events that failed to decode.
	OnBadEvent func(error)
}

// Subscribe implements Source.
func (s *NATSSource) Subscribe(deliver func(Event)) (func(), error) {
	sub, err := s.NC.Subscribe(s.Subjects.AllEvents(), func(m *nats.Msg) {
		e, err := DecodeEvent(m.Data)
		if err != nil {
			if s.OnBadEvent != nil {
				s.OnBadEvent(err)
			}
			return
		}
		deliver(e)
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

// Snapshot implements Source.
func (s *NATSSource) Snapshot(ctx context.Context) (*State, error) {
	m, err := s.NC.RequestWithContext(ctx, s.Subjects.Snapshot(), nil)
	if err != nil {
		return nil, fmt.Errorf("request snapshot: %w", err)
	}
	return decodeSnapshot(m.Data)
}

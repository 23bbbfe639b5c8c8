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

// Publisher sends the leader's events on NATS, redacted, and keeps the
// digest chain over what it sends (see Encoder).
type Publisher struct {
	NC       *nats.Conn
	Subjects Subjects
	enc      Encoder
}

// Publish sends one stored event (or a sync tick made elsewhere, as is).
func (p *Publisher) Publish(e Event) error {
	data, err := p.enc.Event(e)
	if err != nil {
		return err
	}
	return p.send(e, data)
}

// PublishSync sends the periodic (epoch, seq) tick with the digest at that
// point.
func (p *Publisher) PublishSync(epoch, seq uint64, now time.Time) error {
	e, data, err := p.enc.Sync(epoch, seq, now)
	if err != nil {
		return err
	}
	return p.send(e, data)
}

// Digest is the digest at (epoch, seq) of the events published so far,
// zero if the last one published is not (epoch, seq). Read it with the
// state it goes with, under the same lock, for a snapshot.
func (p *Publisher) Digest(epoch, seq uint64) Digest { return p.enc.Digest(epoch, seq) }

func (p *Publisher) send(e Event, data []byte) error {
	if err := p.NC.Publish(p.Subjects.Event(e.Type), data); err != nil {
		return fmt.Errorf("publish event %s: %w", e.SSEID(), err)
	}
	return nil
}

// Snapshot is a leader's state with the digest of its chain at the
// state's (epoch, seq); a zero Digest is unknown.
type Snapshot struct {
	State  *State
	Digest Digest
}

// ServeSnapshots answers snapshot requests with whatever snap returns,
// redacted, until the returned subscription is drained. snap must return
// a state that is not mutated afterwards (a clone), with the digest read
// under the same lock.
//
// A request whose reply subject is not an inbox gets no answer (see
// IsInbox); refused, if set, hears of it.
func ServeSnapshots(nc *nats.Conn, subj Subjects, snap func() (Snapshot, error), refused func(reply string)) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(subj.Snapshot(), func(m *nats.Msg) {
		if !IsInbox(m.Reply) {
			if refused != nil {
				refused(m.Reply)
			}
			return
		}
		var reply SnapshotReply
		s, err := snap()
		switch {
		case err != nil:
			reply.Error = err.Error()
		case s.State == nil:
			reply.Error = "no state"
		default:
			reply.State, reply.Digest = s.State.Redacted(), s.Digest
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

func decodeSnapshot(data []byte) (Snapshot, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return Snapshot{}, fmt.Errorf("decompress snapshot: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return Snapshot{}, fmt.Errorf("decompress snapshot: %w", err)
	}
	var r SnapshotReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return Snapshot{}, fmt.Errorf("decode snapshot: %w", err)
	}
	if r.Error != "" {
		return Snapshot{}, fmt.Errorf("snapshot refused by leader: %s", r.Error)
	}
	if r.State == nil {
		return Snapshot{}, fmt.Errorf("snapshot reply without state")
	}
	return Snapshot{State: r.State.Normalize(), Digest: r.Digest}, nil
}

// Source is what a follower reads: a stream of events (sync ticks included)
// in publish order, and snapshots on demand.
type Source interface {
	// Subscribe calls deliver for every event until stop is called,
	// with the bytes the event arrived as: what the leader's digest
	// chain hashed. deliver must not block.
	Subscribe(deliver func(e Event, data []byte)) (stop func(), err error)
	// Snapshot asks the leader for its state and the digest at it.
	Snapshot(ctx context.Context) (Snapshot, error)
}

// NATSSource is the Source over a NATS connection.
type NATSSource struct {
	NC       *nats.Conn
	Subjects Subjects
	// OnBadEvent, if set, hears about events that failed to decode.
	OnBadEvent func(error)
}

// Subscribe implements Source.
func (s *NATSSource) Subscribe(deliver func(Event, []byte)) (func(), error) {
	sub, err := s.NC.Subscribe(s.Subjects.AllEvents(), func(m *nats.Msg) {
		e, err := DecodeEvent(m.Data)
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

// Snapshot implements Source.
func (s *NATSSource) Snapshot(ctx context.Context) (Snapshot, error) {
	m, err := s.NC.RequestWithContext(ctx, s.Subjects.Snapshot(), nil)
	if err != nil {
		return Snapshot{}, fmt.Errorf("request snapshot: %w", err)
	}
	return decodeSnapshot(m.Data)
}

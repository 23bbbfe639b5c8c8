package natsbus

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// Publisher sends the leader's events on NATS, redacted, and keeps the
// digest chain over what it sends (see events.Encoder).
type Publisher struct {
	NC       *nats.Conn
	Subjects events.Subjects
	enc      events.Encoder
}

// Publish sends one stored event (or a sync tick made elsewhere, as is).
func (p *Publisher) Publish(e events.Event) error {
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
func (p *Publisher) Digest(epoch, seq uint64) events.Digest { return p.enc.Digest(epoch, seq) }

func (p *Publisher) send(e events.Event, data []byte) error {
	if err := p.NC.Publish(p.Subjects.Event(e.Type), data); err != nil {
		return fmt.Errorf("publish event %s: %w", e.SSEID(), err)
	}
	return nil
}

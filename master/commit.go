package master

import (
	"errors"
	"fmt"
	"time"

	"github.com/atollhq/atoll/events"
)

// ErrNotLeader is returned for writes while this master does not lead.
var ErrNotLeader = errors.New("not the leader")

// commitLocked makes changes part of the state, in order: stamp, store,
// apply, publish. m.mu must be held for writing, which also keeps events on
// NATS in seq order. It stops at the first error; events stored before it
// stay.
func (m *Master) commitLocked(changes ...events.Change) error {
	if !m.actingLocked() {
		return ErrNotLeader
	}
	for _, c := range changes {
		start := time.Now()
		e := c.Stamp(m.state, m.epoch, m.cfg.Now().UTC())
		// Apply fails only on a malformed event; check that before the
		// store sees it, so the log never holds what the state refused.
		if err := e.Validate(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		if err := m.cfg.Store.Append(e); err != nil {
			// Without a durable write we must not act: anything we
			// published could vanish on restart.
			return fmt.Errorf("commit %s %s: %w", e.Type, e.ID, err)
		}
		frames := sseFrames(m.state, e) // before Apply: compares with the old records
		if err := m.state.Apply(e); err != nil {
			return fmt.Errorf("commit %s %s: %w", e.Type, e.ID, err)
		}
		m.sse.publish(e.Epoch, e.Seq, frames)
		m.cfg.Store.Applied(m.state)
		if err := m.pub.Publish(e); err != nil {
			// Followers notice the gap at the next event or sync tick.
			// The digest chain has advanced over the event all the
			// same: it stays the chain of m.state.
			m.log.Warn("publish event", "seq", e.Seq, "err", err)
		}
		m.metrics.events.WithLabelValues(string(e.Type)).Inc()
		m.metrics.commit.Observe(time.Since(start).Seconds())
	}
	return nil
}

// commit is commitLocked for callers that do not hold the lock.
func (m *Master) commit(changes ...events.Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.commitLocked(changes...)
}

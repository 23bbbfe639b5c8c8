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
// NATS in seq order. The changes of one call are one store write when the
// store can make them durable together (FileStore): all of them or none,
// so a request that fails leaves nothing behind. Otherwise it stops at the
// first error; events stored before it stay.
func (m *Master) commitLocked(changes ...events.Change) error {
	if !m.actingLocked() {
		return ErrNotLeader
	}
	start := time.Now()
	evs := make([]events.Event, len(changes))
	for i, c := range changes {
		e := c.Stamp(m.state, m.epoch, m.cfg.Now().UTC())
		e.Seq += uint64(i) // each follows the one before it
		// Apply fails only on a malformed event; check that before the
		// store sees it, so the log never holds what the state refused.
		if err := e.Validate(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		evs[i] = e
	}
	// Without a durable write we must not act: anything we published
	// could vanish on restart.
	stored, storeErr := m.storeLocked(evs)
	for _, e := range evs[:stored] {
		frames := sseFrames(m.state, e) // before Apply: compares with the old records
		if err := m.state.Apply(e); err != nil {
			return fmt.Errorf("commit %s %s: %w", e.Type, e.ID, err)
		}
		m.sse.publish(e.Epoch, e.Seq, frames)
		if err := m.pub.Publish(e); err != nil {
			// Followers notice the gap at the next event or sync tick.
			// The digest chain has advanced over the event all the
			// same: it stays the chain of m.state.
			m.log.Warn("publish event", "seq", e.Seq, "err", err)
		}
		m.metrics.events.WithLabelValues(string(e.Type)).Inc()
	}
	if stored > 0 {
		perEvent := time.Since(start).Seconds() / float64(stored)
		for range stored {
			m.metrics.commit.Observe(perEvent)
		}
	}
	return storeErr
}

// storeLocked makes evs durable and returns how many of them are.
func (m *Master) storeLocked(evs []events.Event) (int, error) {
	n, err := m.cfg.Store.AppendAll(evs)
	if err != nil {
		e := evs[min(n, len(evs)-1)]
		return n, fmt.Errorf("commit %s %s: %w", e.Type, e.ID, err)
	}
	return n, nil
}

// commit is commitLocked for callers that do not hold the lock.
func (m *Master) commit(changes ...events.Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.commitLocked(changes...)
}

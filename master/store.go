package master

import (
	"fmt"
	"sync"

	"github.com/atollhq/atoll/events"
)

// ErrFenced is returned once a newer leader has taken over the store.
var ErrFenced = fmt.Errorf("fenced by a newer leader: %w", ErrNotLeader)

// Store keeps the leader's state durable. The leader appends every event
// before it publishes it, so whatever followers have seen survives a
// restart. A Store never sees the leader's state: it keeps what it needs
// (a log, records, its own snapshot) from the events it is given.
type Store interface {
	// Load returns the stored state, or an empty one, with its indexes built
	// (events.State.Reindex or equivalent). A shared store (ZKStore) also
	// fences off every earlier leader here, before it reads.
	Load() (*events.State, error)
	// AppendAll makes evs (consecutive, in seq order) durable before the
	// leader publishes any of them, and returns how many of them, from the
	// first, are durable. FileStore: all or none, one write and one fsync.
	// ZKStore: as few multi requests as ZooKeeper's request size limit
	// allows, in order; it may stop part-way (n < len(evs), err != nil).
	// An error wrapping ErrFenced means a newer leader has taken over.
	AppendAll(evs []events.Event) (int, error)
	Close() error
}

// MemStore is a Store that keeps its state in memory only, for tests: it
// applies the events it is given, so a master started again on the same
// MemStore loads them.
type MemStore struct {
	mu    sync.Mutex
	state *events.State
}

// Load implements Store.
func (m *MemStore) Load() (*events.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == nil {
		m.state = events.NewState()
	}
	return m.state.Clone(), nil
}

// AppendAll implements Store: it stops at the first event that does not
// follow the ones before it.
func (m *MemStore) AppendAll(evs []events.Event) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == nil {
		m.state = events.NewState()
	}
	for i, e := range evs {
		if err := m.state.Apply(e); err != nil {
			return i, fmt.Errorf("mem store: append %s: %w", e.SSEID(), err)
		}
	}
	return len(evs), nil
}

// Close implements Store.
func (m *MemStore) Close() error { return nil }

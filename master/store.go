package master

import (
	"fmt"

	"github.com/atollhq/atoll/events"
)

// ErrFenced is returned once a newer leader has taken over the store.
var ErrFenced = fmt.Errorf("fenced by a newer leader: %w", ErrNotLeader)

// Store keeps the leader's state durable. The leader appends every event
// before it applies or publishes it, so whatever followers have seen
// survives a restart.
type Store interface {
	// Load returns the stored state, or an empty one. A shared store
	// (ZKStore) also fences off every earlier leader here, before it
	// reads, so the state cannot change behind the new leader's back.
	Load() (*events.State, error)
	// Append makes one event durable before the leader applies it. An
	// error wrapping ErrFenced means a newer leader has taken over: this
	// master must stop acting.
	Append(e events.Event) error
	// AppendAll makes evs (consecutive, in seq order) durable before the
	// leader publishes any of them, and returns how many of them, from
	// the first, are.
	AppendAll(evs []events.Event) (int, error)
	// Applied tells the store the state after the last appended event,
	// so it may compact its log into a snapshot. It must not keep s.
	Applied(s *events.State)
	Close() error
}

// MemStore is a Store that keeps nothing across restarts, for tests.
type MemStore struct{ state *events.State }

// Load implements Store.
func (m *MemStore) Load() (*events.State, error) {
	if m.state == nil {
		return events.NewState(), nil
	}
	return m.state.Clone(), nil
}

// Append implements Store.
func (m *MemStore) Append(events.Event) error { return nil }

// AppendAll implements Store.
func (m *MemStore) AppendAll(evs []events.Event) (int, error) { return len(evs), nil }

// Applied implements Store.
func (m *MemStore) Applied(s *events.State) { m.state = s.Clone() }

// Close implements Store.
func (m *MemStore) Close() error { return nil }

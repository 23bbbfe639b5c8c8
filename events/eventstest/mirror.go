package eventstest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// Mirror is an events.Handler that keeps its own copy of the state: Reset
// clones the follower's state and Applied applies the event to the copy.
// The copy therefore matches the leader's only if the follower hands over
// a complete snapshot and then every event, in order; the first event the
// copy rejects is kept as Err. It is safe for concurrent use.
type Mirror struct {
	mu      sync.Mutex
	state   *events.State
	resets  int
	applied int
	err     error
}

// Reset implements events.Handler.
func (m *Mirror) Reset(s *events.State) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = s.Clone()
	m.resets++
}

// Applied implements events.Handler.
func (m *Mirror) Applied(_ *events.State, e events.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applied++
	if m.err != nil {
		return
	}
	if m.state == nil {
		m.err = fmt.Errorf("mirror: event %s before the first Reset", e.SSEID())
		return
	}
	if err := m.state.Apply(e); err != nil {
		m.err = fmt.Errorf("mirror: %w", err)
	}
}

// State returns a copy of the mirrored state, nil before the first Reset.
func (m *Mirror) State() *events.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == nil {
		return nil
	}
	return m.state.Clone()
}

// Resets counts Reset calls.
func (m *Mirror) Resets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.resets
}

// AppliedCount counts Applied calls.
func (m *Mirror) AppliedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied
}

// Err returns the first event the copy rejected, if any.
func (m *Mirror) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Matches returns nil once the mirror holds exactly want, else why not.
func (m *Mirror) Matches(want *events.State) error {
	if err := m.Err(); err != nil {
		return err
	}
	got := m.State()
	if got == nil {
		return fmt.Errorf("mirror: no snapshot yet")
	}
	return Equal(got, want)
}

// WaitEqual waits until the mirror holds the leader's current state, as
// followers see it (redacted).
func (m *Mirror) WaitEqual(t testing.TB, l *Leader) {
	t.Helper()
	WaitFor(t, DefaultWait, func() error { return m.Matches(l.State().Redacted()) })
}

// DefaultWait is how long WaitEqual waits: generous, since polling ends as
// soon as the condition holds.
const DefaultWait = 5 * time.Second

// WaitFor polls cond until it returns nil and fails the test with cond's
// last error if that takes longer than timeout.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not the case after %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Follow runs an events.Follower on src with a Mirror as its handler until
// the test ends. A zero syncTimeout keeps the follower's default.
func Follow(t testing.TB, src events.Source, syncTimeout time.Duration) (*events.Follower, *Mirror) {
	t.Helper()
	m := &Mirror{}
	f := &events.Follower{Source: src, Handler: m, SyncTimeout: syncTimeout}
	Start(t, f)
	return f, m
}

// Start runs f until the test ends, then fails the test if Run returned an
// error. A nil f.Log is set to log into the test's output.
func Start(t testing.TB, f *events.Follower) {
	t.Helper()
	if f.Log == nil {
		f.Log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("follower: %v", err)
		}
	})
}

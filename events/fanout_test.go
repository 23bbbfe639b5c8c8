package events_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// callLog records the calls its members hear, in the order heard.
type callLog struct {
	mu     sync.Mutex
	calls  []string
	states map[*events.State]bool // every state handed over
}

func (l *callLog) saw(s *events.State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.states == nil {
		l.states = map[*events.State]bool{}
	}
	l.states[s] = true
}

func (l *callLog) stateCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.states)
}

func (l *callLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

func (l *callLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// logged is a member that mirrors the state and logs its calls; idle
// members are IdleHandlers.
type logged struct {
	*eventstest.Mirror
	name string
	log  *callLog
}

func (h logged) Reset(s *events.State) {
	h.log.add(fmt.Sprintf("%s reset %d", h.name, s.Seq))
	h.log.saw(s)
	h.Mirror.Reset(s)
}

func (h logged) Applied(s *events.State, e events.Event) {
	h.log.add(fmt.Sprintf("%s applied %d", h.name, e.Seq))
	h.log.saw(s)
	h.Mirror.Applied(s, e)
}

type loggedIdle struct{ logged }

func (h loggedIdle) Idle(s *events.State) {
	h.log.add(fmt.Sprintf("%s idle %d", h.name, s.Seq))
	h.log.saw(s)
}

// One follower feeds both members: one snapshot, one state handed to both,
// the same calls for both in member order, Idle only to the member that
// wants it, and both hold the leader's state.
func TestFanoutFeedsEveryMember(t *testing.T) {
	l := eventstest.NewLeader()
	l.Commit(events.PutAgent(eventstest.Agent("a1")))
	var log callLog
	dns := logged{&eventstest.Mirror{}, "dns", &log}
	lb := loggedIdle{logged{&eventstest.Mirror{}, "lb", &log}}
	f := &events.Follower{Source: l, Handler: events.Fanout{dns, lb}, SyncTimeout: noTicks}
	eventstest.Start(t, f)
	eventstest.WaitFor(t, eventstest.DefaultWait, func() error {
		if !slices.Contains(log.get(), "lb idle 2") {
			return fmt.Errorf("no idle after the snapshot: %v", log.get())
		}
		return nil
	})
	l.Commit(events.PutApp(eventstest.App("/web", 1)))
	dns.WaitEqual(t, l)
	lb.WaitEqual(t, l)
	eventstest.WaitFor(t, eventstest.DefaultWait, func() error {
		if !slices.Contains(log.get(), "lb idle 3") {
			return fmt.Errorf("no idle after the event: %v", log.get())
		}
		return nil
	})
	want := []string{"dns reset 2", "lb reset 2", "lb idle 2", "dns applied 3", "lb applied 3", "lb idle 3"}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	if n := l.Snapshots(); n != 1 {
		t.Errorf("%d snapshot requests for two members, want 1", n)
	}
	if n := log.stateCount(); n != 1 {
		t.Errorf("the members were handed %d states, want the follower's one", n)
	}
}

// stalling is a member whose first Applied waits until released: a half
// busy for longer than the follower's buffer lasts.
type stalling struct {
	*eventstest.Mirror
	once             sync.Once
	entered, proceed chan struct{}
}

func (h *stalling) Applied(s *events.State, e events.Event) {
	h.once.Do(func() {
		close(h.entered)
		<-h.proceed
	})
	h.Mirror.Applied(s, e)
}

// A slow member holds the other back, and when the events that wait for
// it overflow the follower's buffer, both are reset from one new snapshot:
// neither misses an event or ends up apart from the leader.
func TestFanoutSlowMemberResyncsAll(t *testing.T) {
	l := eventstest.NewLeader()
	slow := &stalling{Mirror: &eventstest.Mirror{}, entered: make(chan struct{}), proceed: make(chan struct{})}
	other := &eventstest.Mirror{}
	f := &events.Follower{Source: l, Handler: events.Fanout{other, slow}, SyncTimeout: noTicks, Buffer: 4}
	eventstest.Start(t, f)
	other.WaitEqual(t, l)

	l.Commit(events.PutAgent(eventstest.Agent("a1")))
	<-slow.entered
	for i := range 10 {
		l.Commit(events.PutApp(eventstest.App(fmt.Sprintf("/app-%d", i), 1)))
	}
	// The other member got the event the slow one is stuck on, and
	// nothing after it.
	if err := other.Matches(l.State().Redacted()); err == nil {
		t.Fatal("the fast member ran ahead of the slow one")
	}
	if got := other.AppliedCount(); got != 1 {
		t.Errorf("fast member applied %d events while the slow one was busy, want 1", got)
	}
	close(slow.proceed)

	other.WaitEqual(t, l)
	slow.WaitEqual(t, l)
	if n := l.Snapshots(); n != 2 {
		t.Errorf("%d snapshot requests, want 2: the first and one resync for both members", n)
	}
	if a, b := other.Resets(), slow.Resets(); a != 2 || b != 2 {
		t.Errorf("resets %d and %d, want 2 each", a, b)
	}
	wantResyncs(t, f, 1)
}

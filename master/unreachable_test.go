package master

import (
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// With Marathon's unreachableStrategy, an unreachable task keeps its place
// for inactiveAfterSeconds (no replacement yet), is replaced after that,
// and is forgotten after expungeAfterSeconds.
func TestUnreachableStrategyHoldsReplacesExpunges(t *testing.T) {
	m, clock := leadingMaster(t)
	first := addAgent(t, m, "h1", "127.0.0.9")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16,
		"unreachableStrategy": {"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120}}`)
	reconcile(t, m)
	staged := tasksIn(m, "/web", events.TaskStaging)
	if len(staged) != 1 || staged[0].AgentID != first {
		t.Fatalf("staged %+v", staged)
	}
	original := staged[0].ID
	setStatus(t, m, original, events.TaskRunning)
	second := addAgent(t, m, "h2", "127.0.0.10")
	advance := func(d time.Duration) {
		clock.Advance(d)
		m.live.set(second, nodeOf(m, second), true, clock.Now())
		reconcile(t, m)
	}

	advance(15 * time.Second) // the agent timeout: h1 is unreachable
	if u := tasksIn(m, "/web", events.TaskUnreachable); len(u) != 1 || u[0].UnreachableSince == nil {
		t.Fatalf("unreachable %+v", u)
	}
	advance(59 * time.Second)
	if s := tasksIn(m, "/web", events.TaskStaging); len(s) != 0 {
		t.Fatalf("a replacement %v staged before inactiveAfterSeconds", ids(s))
	}
	advance(time.Second)
	reconcile(t, m)
	if s := tasksIn(m, "/web", events.TaskStaging); len(s) != 1 || s[0].AgentID != second {
		t.Fatalf("no replacement on h2 after inactiveAfterSeconds: %+v", s)
	}
	advance(59 * time.Second)
	if u := tasksIn(m, "/web", events.TaskUnreachable); len(u) != 1 {
		t.Fatalf("forgotten before expungeAfterSeconds: %v", u)
	}
	advance(time.Second)
	m.View(func(s *events.State) {
		if _, ok := s.Tasks[original]; ok {
			t.Errorf("the unreachable task is kept after expungeAfterSeconds: %+v", s.Tasks[original])
		}
	})
}

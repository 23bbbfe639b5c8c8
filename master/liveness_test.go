package master

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// A report that matched the state only with a change the store then
// failed to keep is no longer settled: its next repeat is reconciled, and
// the agent's word that the task runs is taken again.
func TestRepeatAfterFailedWriteIsReconciled(t *testing.T) {
	clock := &manualClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	store := &gatedStore{}
	m, err := New(Config{NC: eventstest.Connect(t, eventstest.StartNATS(t)), Store: store,
		AgentTimeout: 15 * time.Second, Now: clock.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	establishForTest(t, m)
	id := addAgent(t, m, "h1", "127.0.0.9")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 1}`)
	reconcile(t, m)
	task := tasksIn(m, "/web", events.TaskStaging)[0]

	// The task's status update is staged, its store write held.
	verdict, entered := make(chan error, 1), make(chan struct{})
	store.mu.Lock()
	store.gate, store.entered = verdict, entered
	store.mu.Unlock()
	setStatus(t, m, task.ID, events.TaskRunning)
	<-entered
	data, _ := json.Marshal(events.Heartbeat{AgentID: id, Tasks: []events.TaskReport{{TaskID: task.ID, AppID: "/web", State: events.TaskRunning}}})
	beat := func() {
		m.handleHeartbeat(&nats.Msg{Subject: m.cfg.Subjects.Heartbeat("h1"), Data: data})
		m.mu.Lock()
		m.applyReportsLocked(clock.Now())
		m.mu.Unlock()
	}
	beat() // matches the state with the update: settles

	verdict <- errors.New("no space left on device")
	waitUntil(t, func() bool { return len(tasksIn(m, "/web", events.TaskStaging)) == 1 }, "the status update taken back")
	settledBefore := testutil.ToFloat64(m.metrics.heartbeatsSettled)
	beat()
	if n := testutil.ToFloat64(m.metrics.heartbeatsSettled); n != settledBefore {
		t.Errorf("the repeat was skipped as settled (settled heartbeats %v, want %v)", n, settledBefore)
	}
	if got := tasksIn(m, "/web", events.TaskRunning); len(got) != 1 {
		t.Fatalf("after the repeat: %d running tasks, want the one the agent runs", len(got))
	}
}

// A pass takes the oldest reports first, at most maxReportsPerPass of
// them, and says some are left; the next takes the rest.
func TestReportsTakenOldestFirstInSlices(t *testing.T) {
	l := newLiveness()
	at := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"c", "a", "b"} {
		l.set(id, "node-"+id, true, at)
		l.agents[id].report = &agentReport{at: at.Add(time.Duration(i) * time.Second)}
	}
	first, more := l.takeReports(2)
	if _, ok := first["b"]; len(first) != 2 || ok || !more {
		t.Fatalf("first take: %d reports (b among them: %v), more %v; want c and a, the oldest, and more", len(first), ok, more)
	}
	rest, more := l.takeReports(2)
	if _, ok := rest["b"]; len(rest) != 1 || !ok || more {
		t.Fatalf("second take: %v, more %v; want b alone and nothing more", rest, more)
	}
	if none, more := l.takeReports(2); len(none) != 0 || more {
		t.Fatalf("third take: %v, more %v; want nothing", none, more)
	}
}

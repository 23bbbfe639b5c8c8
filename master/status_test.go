package master

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
)

// Status updates are recorded while an earlier one's store write is still
// under way, and each is acked once it is durable: agents' updates do
// not wait in line, one store write each (issue 13: a scale-up ran at
// one launch per fsync).
func TestStatusUpdatesDoNotWaitForEarlierWrites(t *testing.T) {
	m, store, ns := gatedMaster(t, 0)
	agentID := addAgent(t, m, "h1", "127.0.0.9")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 2}`)
	reconcile(t, m)
	staged := tasksIn(m, "/web", events.TaskStaging)
	if len(staged) != 2 {
		t.Fatalf("%d tasks staged, want 2", len(staged))
	}

	// The store holds the next write until told.
	verdict, entered := make(chan error, 1), make(chan struct{})
	store.mu.Lock()
	store.gate, store.entered = verdict, entered
	store.mu.Unlock()
	t.Cleanup(func() { // a failing test lets the committer stop
		select {
		case verdict <- nil:
		default:
		}
	})

	agent := ns.ConnectAs(t, natsauth.RoleAgent, "h1")
	acks := make(chan string, 2)
	send := func(taskID string) {
		data, _ := json.Marshal(events.StatusUpdate{AgentID: agentID, TaskID: taskID, State: events.TaskRunning, Time: time.Now()})
		go func() {
			msg, err := agent.Request(m.cfg.Subjects.Status("h1"), data, 5*time.Second)
			var ack events.Ack
			if err == nil {
				err = json.Unmarshal(msg.Data, &ack)
			}
			if err != nil || ack.Error != "" {
				t.Errorf("status of %s: err %v, ack %+v", taskID, err, ack)
			}
			acks <- taskID
		}()
	}
	running := func(id string) func() bool {
		return func() (ok bool) {
			m.View(func(s *events.State) { ok = s.Tasks[id].State == events.TaskRunning })
			return
		}
	}
	send(staged[0].ID)
	<-entered // its write is held
	send(staged[1].ID)
	waitUntil(t, running(staged[1].ID), "the second update recorded while the first one's write is held")

	verdict <- nil
	deadline := time.Now().Add(5 * time.Second)
	got := 0
	for got < 2 {
		// Acks go out with the requests to agents a durable batch
		// releases, which the test runs.
		c, _ := captured.Load(m)
		for _, s := range c.(*capturedSends).take() {
			s(context.Background())
		}
		select {
		case <-acks:
			got++
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 status updates acked", got)
		}
	}
}

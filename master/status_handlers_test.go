package master

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
)

// TestStatusUpdatesShareStoreWrites: while one agent's status update waits
// for its store write, another agent's is taken in and staged for the
// next write, rather than queued behind it (a scale-up's thousands of
// TASK_RUNNING are acked a store write for many, not one each).
func TestStatusUpdatesShareStoreWrites(t *testing.T) {
	m, store, ns := gatedMaster(t, time.Minute)
	agentOf := map[string]string{addAgent(t, m, "h1", "127.0.0.11"): "h1", addAgent(t, m, "h2", "127.0.0.12"): "h2"}
	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 2, "cpus": 0.1, "mem": 16,
		"constraints": [["hostname", "UNIQUE"]]}`)
	reconcile(t, m)
	taskOn := map[string]events.Task{}
	for _, task := range tasksIn(m, "/web", events.TaskStaging) {
		taskOn[agentOf[task.AgentID]] = task
	}
	if len(taskOn) != 2 {
		t.Fatalf("tasks by node %v, want one on h1 and one on h2", taskOn)
	}

	verdict, entered := make(chan error), make(chan struct{})
	store.mu.Lock()
	store.gate, store.entered = verdict, entered
	store.mu.Unlock()
	var once sync.Once
	release := func() { once.Do(func() { close(verdict) }) }
	t.Cleanup(release) // before the committer is stopped
	acked := make(chan string, 2)
	send := func(node string) {
		nc := ns.ConnectAs(t, natsauth.RoleAgent, node)
		task := taskOn[node]
		data, _ := json.Marshal(events.StatusUpdate{AgentID: task.AgentID, TaskID: task.ID, State: events.TaskRunning, Time: time.Now()})
		go func() {
			if _, err := nc.Request(m.cfg.Subjects.Status(node), data, 10*time.Second); err != nil {
				t.Errorf("status of %s: %v", node, err)
			}
			acked <- node
		}()
	}
	send("h1")
	<-entered // h1's update is being written
	send("h2")
	waitUntil(t, func() bool { return len(tasksIn(m, "/web", events.TaskRunning)) == 2 },
		"h2's update staged while h1's store write is held")
	if n := testutil.ToFloat64(m.metrics.statusRecv); n != 2 {
		t.Errorf("%v status updates received, want 2", n)
	}
	release()
	for range 2 {
		select {
		case <-acked:
		case <-time.After(10 * time.Second):
			t.Fatal("status updates not acked once the store write was let through")
		}
	}
}

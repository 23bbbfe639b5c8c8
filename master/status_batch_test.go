package master

import (
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/natsauth"
)

// writeCountingStore is a MemStore that records how many events each
// store write held.
type writeCountingStore struct {
	MemStore
	mu     sync.Mutex
	writes []int
}

func (s *writeCountingStore) AppendAll(evs []events.Event) (int, error) {
	s.mu.Lock()
	s.writes = append(s.writes, len(evs))
	s.mu.Unlock()
	return s.MemStore.AppendAll(evs)
}

func (s *writeCountingStore) writesSince(n int) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.writes[n:]...)
}

// TestStatusBatch: an agent's batch of status updates, sent as one
// request on its status subject, changes each task as lone updates would,
// in order, in one store write, and is answered with one ack per update
// in order; an update about another node's task is refused on its own
// without holding up the others; a lone update from an agent that
// predates batches is still recorded and acked.
func TestStatusBatch(t *testing.T) {
	ns := eventstest.StartNATS(t)
	store := &writeCountingStore{}
	m, err := New(Config{NC: eventstest.Connect(t, ns), Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	establishForTest(t, m)
	subscribeForTest(t, m)
	h1 := addAgent(t, m, "h1", "127.0.0.11")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 3, "cpus": 0.1, "mem": 16,
		"constraints": [["hostname", "LIKE", "h1"]]}`)
	reconcile(t, m)
	h2 := addAgent(t, m, "h2", "127.0.0.12")
	createApp(t, m, `{"id": "/db", "cmd": "sleep 100", "instances": 1, "cpus": 0.1, "mem": 16,
		"constraints": [["hostname", "LIKE", "h2"]]}`)
	reconcile(t, m)
	web := tasksIn(m, "/web", events.TaskStaging)
	db := tasksIn(m, "/db", events.TaskStaging)
	if len(web) != 3 || len(db) != 1 {
		t.Fatalf("staged: %d of /web, %d of /db; want 3 and 1", len(web), len(db))
	}

	up := func(agent, task string, state events.TaskState) events.StatusUpdate {
		return events.StatusUpdate{AgentID: agent, TaskID: task, State: state, Time: time.Now()}
	}
	batch := events.StatusBatch{Updates: []events.StatusUpdate{
		up(h1, web[0].ID, events.TaskStarting),
		up(h1, db[0].ID, events.TaskRunning), // h2's task: refused
		up(h1, web[1].ID, events.TaskRunning),
		up(h1, web[0].ID, events.TaskRunning), // after its TASK_STARTING
		up(h1, web[2].ID, events.TaskRunning),
	}}
	writesBefore := len(store.writesSince(0))
	agent := ns.ConnectAs(t, natsauth.RoleAgent, "h1")
	var reply events.AckBatch
	request(t, agent, m.cfg.Subjects.Status("h1"), batch, &reply)

	if len(reply.Acks) != len(batch.Updates) {
		t.Fatalf("%d acks for %d updates: %+v", len(reply.Acks), len(batch.Updates), reply)
	}
	for i, a := range reply.Acks {
		u := batch.Updates[i]
		switch {
		case a.TaskID != u.TaskID:
			t.Errorf("ack %d is for task %s, want %s (acks in the batch's order)", i, a.TaskID, u.TaskID)
		case u.TaskID == db[0].ID && a.Code != events.AckRefused:
			t.Errorf("ack of h2's task sent by h1: %+v, want a refusal", a.Ack)
		case u.TaskID != db[0].ID && a.Error != "":
			t.Errorf("ack %d (task %s): %+v, want no error", i, u.TaskID, a.Ack)
		}
	}
	if n := len(tasksIn(m, "/web", events.TaskRunning)); n != 3 {
		t.Errorf("%d of /web's 3 tasks running after the batch (TASK_STARTING then TASK_RUNNING applied in order)", n)
	}
	if n := len(tasksIn(m, "/db", events.TaskStaging)); n != 1 {
		t.Errorf("h2's task changed by h1's update: %d of /db staging, want 1", n)
	}
	// Stored before the acks came (the reply above waited for them). The
	// committer takes the open batch without the master's lock (commit.go),
	// so a busy moment may cut the batch's updates into more than one
	// write; they are all stored, and nothing else is.
	total := 0
	w := store.writesSince(writesBefore)
	for _, n := range w {
		total += n
	}
	if total != 4 {
		t.Errorf("store writes for the batch: %v events each, want the 4 events (3 tasks, one of them twice), usually in one write", w)
	}

	// A lone update, as an agent that predates batches sends it.
	lone := ns.ConnectAs(t, natsauth.RoleAgent, "h2")
	var ack events.Ack
	request(t, lone, m.cfg.Subjects.Status("h2"), up(h2, db[0].ID, events.TaskRunning), &ack)
	if ack.Error != "" {
		t.Fatalf("lone update: %+v", ack)
	}
	if n := len(tasksIn(m, "/db", events.TaskRunning)); n != 1 {
		t.Errorf("%d of /db running after its lone update, want 1", n)
	}
}

// request sends v to subject on nc and decodes the reply into out.
func request(t *testing.T, nc *nats.Conn, subject string, v, out any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := nc.Request(subject, data, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		t.Fatalf("reply to %s: %v (%s)", subject, err, msg.Data)
	}
}

// TestStatusWithAStateNoAgentReportsIsRefused: an agent may say a task
// starts, runs, ends or is being killed; a state only the master decides
// (TASK_GONE, TASK_UNREACHABLE, TASK_STAGING) or one Mesos does not have
// is refused, changes nothing, and in a batch does not hold up the
// updates after it.
func TestStatusWithAStateNoAgentReportsIsRefused(t *testing.T) {
	m, _, ns := leadingMasterOn(t)
	subscribeForTest(t, m)
	h1 := addAgent(t, m, "h1", "127.0.0.11")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 1, "cpus": 0.1, "mem": 16}`)
	reconcile(t, m)
	web := tasksIn(m, "/web", events.TaskStaging)
	if len(web) != 1 {
		t.Fatalf("%d of /web staging, want 1", len(web))
	}
	agent := ns.ConnectAs(t, natsauth.RoleAgent, "h1")
	up := func(state events.TaskState) events.StatusUpdate {
		return events.StatusUpdate{AgentID: h1, TaskID: web[0].ID, State: state, Time: time.Now()}
	}
	for _, state := range []events.TaskState{"TASK_BOGUS", events.TaskGone, events.TaskUnreachable, events.TaskStaging} {
		var ack events.Ack
		request(t, agent, m.cfg.Subjects.Status("h1"), up(state), &ack)
		if ack.Code != events.AckRefused {
			t.Errorf("%s: ack %+v, want a refusal", state, ack)
		}
	}
	if got := tasksIn(m, "/web", events.TaskStaging); len(got) != 1 {
		t.Fatal("the task left TASK_STAGING after refused updates")
	}
	var reply events.AckBatch
	request(t, agent, m.cfg.Subjects.Status("h1"), events.StatusBatch{Updates: []events.StatusUpdate{
		up("TASK_BOGUS"), up(events.TaskRunning)}}, &reply)
	if len(reply.Acks) != 2 || reply.Acks[0].Code != events.AckRefused || reply.Acks[1].Error != "" {
		t.Fatalf("batch acks %+v, want a refusal then an ack", reply.Acks)
	}
	if n := len(tasksIn(m, "/web", events.TaskRunning)); n != 1 {
		t.Errorf("%d of /web running after the batch, want 1", n)
	}
}

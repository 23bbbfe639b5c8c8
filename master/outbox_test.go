package master

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/natsauth"
)

// playAgent answers node's launch and kill subjects on a connection with
// node's agent credential, as a batch-speaking agent: it acks every task
// but those refuse names (refused, with that code). It returns the
// requests it received, by subject.
func playAgent(t *testing.T, ns *eventstest.NATS, subj events.Subjects, node string, refuse map[string]events.AckCode) *receivedRequests {
	t.Helper()
	got := &receivedRequests{bySubject: map[string][][]string{}}
	nc := ns.ConnectAs(t, natsauth.RoleAgent, node)
	answer := func(msg *nats.Msg, ids []string) {
		got.add(msg.Subject, ids)
		reply := events.AckBatch{Acks: []events.TaskAck{}}
		for _, id := range ids {
			ack := events.TaskAck{TaskID: id}
			if code, ok := refuse[id]; ok {
				ack.Code, ack.Error = code, "refused by the test"
			}
			reply.Acks = append(reply.Acks, ack)
		}
		data, _ := json.Marshal(reply)
		_ = msg.Respond(data)
	}
	for _, s := range []struct {
		subject string
		h       nats.MsgHandler
	}{
		{subj.Launch(node), func(msg *nats.Msg) {
			reqs, batch, err := events.DecodeLaunches(msg.Data)
			if err != nil || !batch {
				t.Errorf("launch to %s: batch %v, err %v", node, batch, err)
			}
			var ids []string
			for _, r := range reqs {
				ids = append(ids, r.Task.ID)
			}
			answer(msg, ids)
		}},
		{subj.Kill(node), func(msg *nats.Msg) {
			reqs, batch, err := events.DecodeKills(msg.Data)
			if err != nil || !batch {
				t.Errorf("kill to %s: batch %v, err %v", node, batch, err)
			}
			var ids []string
			for _, r := range reqs {
				ids = append(ids, r.TaskID)
			}
			answer(msg, ids)
		}},
	} {
		sub, err := nc.Subscribe(s.subject, s.h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return got
}

// receivedRequests is what a played agent received: per subject, the
// task ids of each request.
type receivedRequests struct {
	mu        sync.Mutex
	bySubject map[string][][]string
}

func (r *receivedRequests) add(subject string, ids []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bySubject[subject] = append(r.bySubject[subject], ids)
}

func (r *receivedRequests) on(subject string) [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bySubject[subject]
}

// TestLaunchesGoOneRequestPerAgent: a pass that launches ten tasks on two
// agents sends each agent one request with its five, and a task its agent
// refuses fails alone while the others are acked. Killing the app sends
// each agent one kill request.
func TestLaunchesGoOneRequestPerAgent(t *testing.T) {
	m, _, ns := leadingMasterOn(t)
	a1 := addAgent(t, m, "h1", "127.0.0.11")
	addAgent(t, m, "h2", "127.0.0.12")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 10, "cpus": 0.1, "mem": 16,
		"constraints": [["hostname", "MAX_PER", "5"]]}`)

	sends, _ := reconcile(t, m)
	staged := tasksIn(m, "/web", events.TaskStaging)
	if len(staged) != 10 {
		t.Fatalf("%d tasks staged, want 10", len(staged))
	}
	var refused string
	for _, task := range staged {
		if task.AgentID == a1 {
			refused = task.ID
			break
		}
	}
	agents := map[string]*receivedRequests{
		"h1": playAgent(t, ns, m.cfg.Subjects, "h1", map[string]events.AckCode{refused: events.AckRefused}),
		"h2": playAgent(t, ns, m.cfg.Subjects, "h2", nil),
	}
	if len(sends) != 2 {
		t.Errorf("the pass released %d requests, want one per agent (2)", len(sends))
	}
	runAll(sends)

	for node, got := range agents {
		reqs := got.on(m.cfg.Subjects.Launch(node))
		if len(reqs) != 1 || len(reqs[0]) != 5 {
			t.Errorf("agent %s got launch requests %v, want one with 5 tasks", node, reqs)
		}
	}
	if n := testutil.ToFloat64(m.metrics.agentRequests.WithLabelValues(requestLaunch)); n != 2 {
		t.Errorf("atoll_master_agent_requests_total{kind=launch} = %v, want 2", n)
	}
	// A task that fails leaves the state (as Marathon forgets it); the
	// others stay staging, their launches acked.
	if n := testutil.ToFloat64(m.metrics.failures); n != 1 {
		t.Errorf("%v task failures, want 1 (the refused launch)", n)
	}
	if left := tasksIn(m, "/web", events.TaskStaging); len(left) != 9 || slices.ContainsFunc(left, func(x events.Task) bool { return x.ID == refused }) {
		t.Errorf("%d tasks staging after the launches were answered, want the 9 not refused", len(left))
	}
	for _, task := range staged {
		if _, acked := m.live.ackOf(task.ID); acked != (task.ID != refused) {
			t.Errorf("task %s: launch acked %v", task.ID, acked)
		}
	}

	// The app goes: each agent hears one kill request for its tasks.
	if _, err := m.DeleteApp("/web", true); err != nil {
		t.Fatal(err)
	}
	sends, _ = reconcile(t, m)
	runAll(sends)
	for node, got := range agents {
		if reqs := got.on(m.cfg.Subjects.Kill(node)); len(reqs) != 1 {
			t.Errorf("agent %s got kill requests %v, want one", node, reqs)
		}
	}
}

// runAll runs the released requests and returns when all are answered.
func runAll(sends []func(context.Context)) {
	var wg sync.WaitGroup
	for _, send := range sends {
		wg.Add(1)
		go func() { defer wg.Done(); send(context.Background()) }()
	}
	wg.Wait()
}

// TestLaunchBatchesFitOneMessage: a batch never carries more launches than
// maxLaunchesPerRequest nor more bytes than NATS takes in one message, and
// every launch goes in exactly one batch, in order.
func TestLaunchBatchesFitOneMessage(t *testing.T) {
	big := strings.Repeat("x", 10_000)
	var reqs []events.LaunchRequest
	for i := range 1200 {
		reqs = append(reqs, events.LaunchRequest{Task: events.Task{ID: "app." + string(rune('a'+i%26)) + strings.Repeat("0", i%7)},
			Env: map[string]string{"BIG": big}})
	}
	const maxBytes = 1 << 20
	batches, err := encodeBatches("launches", reqs, maxLaunchesPerRequest, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range batches {
		if len(b.body) > maxBytes || len(b.items) > maxLaunchesPerRequest {
			t.Errorf("batch of %d launches, %d bytes", len(b.items), len(b.body))
		}
		got, batch, err := events.DecodeLaunches(b.body)
		if err != nil || !batch || len(got) != len(b.items) {
			t.Fatalf("batch decodes to %d launches (batch %v, err %v), want %d", len(got), batch, err, len(b.items))
		}
		for i := range got {
			if got[i].Task.ID != reqs[n+i].Task.ID {
				t.Fatalf("launch %d is %s, want %s", n+i, got[i].Task.ID, reqs[n+i].Task.ID)
			}
		}
		n += len(got)
	}
	if n != len(reqs) {
		t.Errorf("batches carry %d launches, want %d", n, len(reqs))
	}
}

// TestLaunchesToAnAgentThatPredatesBatches: an agent from before batches
// finds no task id in a batch and refuses it as a whole, doing nothing;
// the master then sends it each launch alone, and every task is acked,
// none failed (a master upgraded before its agents).
func TestLaunchesToAnAgentThatPredatesBatches(t *testing.T) {
	m, _, ns := leadingMasterOn(t)
	addAgent(t, m, "h1", "127.0.0.11")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 3, "cpus": 0.1, "mem": 16}`)
	sends, _ := reconcile(t, m)

	nc := ns.ConnectAs(t, natsauth.RoleAgent, "h1")
	var mu sync.Mutex
	var lone []string
	sub, err := nc.Subscribe(m.cfg.Subjects.Launch("h1"), func(msg *nats.Msg) {
		var req events.LaunchRequest // all an old agent knows
		_ = json.Unmarshal(msg.Data, &req)
		ack := events.Ack{}
		if req.Task.ID == "" {
			ack = events.Ack{Code: events.AckRefused, Error: "launch request without task id"}
		} else {
			mu.Lock()
			lone = append(lone, req.Task.ID)
			mu.Unlock()
		}
		data, _ := json.Marshal(ack)
		_ = msg.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(lone)
	}
	// A batch that finds no responder yet (the server has not routed
	// the new subscription to the master's connection) is sent again at
	// the next pass, as a real agent's would be.
	deadline := time.Now().Add(10 * time.Second)
	for runAll(sends); received() < 3 && time.Now().Before(deadline); runAll(sends) {
		sends, _ = reconcile(t, m)
	}

	staged := tasksIn(m, "/web", events.TaskStaging)
	if len(staged) != 3 || received() != 3 {
		t.Fatalf("%d tasks staging, %d lone launches received; want 3 and 3", len(staged), received())
	}
	for _, task := range staged {
		if _, acked := m.live.ackOf(task.ID); !acked {
			t.Errorf("task %s: launch not acked", task.ID)
		}
	}
}

package simagent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/natsauth"
)

// masterSide answers a simulated agent as the master does, on a master
// credential, and records what the agent sent.
type masterSide struct {
	mu         sync.Mutex
	registers  []events.RegisterRequest
	lastReport []events.TaskReport
	statuses   []events.StatusUpdate // acked ones, in order
	dropped    map[string]bool       // tasks whose first TASK_RUNNING went unanswered
	reregister bool                  // the next heartbeat reply asks for it
	// requests counts the updates of each status request, answered or
	// not; predatesBatches answers a batch as a master from before
	// batches does: a plain Ack, nothing recorded.
	requests        []int
	predatesBatches bool
	refuseRegister  bool // registrations are refused while set
}

func (ms *masterSide) serve(t *testing.T, nc *nats.Conn) {
	t.Helper()
	s := events.Subjects{}
	reply := func(m *nats.Msg, v any) {
		data, _ := json.Marshal(v)
		_ = m.Respond(data)
	}
	subs := map[string]nats.MsgHandler{
		s.FromAgents(events.VerbRegister): func(m *nats.Msg) {
			var req events.RegisterRequest
			_ = json.Unmarshal(m.Data, &req)
			ms.mu.Lock()
			ms.registers = append(ms.registers, req)
			refuse := ms.refuseRegister
			ms.mu.Unlock()
			if refuse {
				reply(m, events.RegisterReply{Error: "not yet"})
				return
			}
			reply(m, events.RegisterReply{AgentID: "agent-id-1"})
		},
		s.FromAgents(events.VerbHeartbeat): func(m *nats.Msg) {
			var hb events.Heartbeat
			_ = json.Unmarshal(m.Data, &hb)
			ms.mu.Lock()
			ms.lastReport = hb.Tasks
			rr := ms.reregister
			ms.reregister = false
			ms.mu.Unlock()
			reply(m, events.HeartbeatReply{Reregister: rr})
		},
		s.FromAgents(events.VerbStatus): func(m *nats.Msg) {
			ups, batch, err := events.DecodeStatuses(m.Data)
			if err != nil {
				reply(m, events.Ack{Code: events.AckBadRequest, Error: err.Error()})
				return
			}
			ms.mu.Lock()
			defer ms.mu.Unlock()
			ms.requests = append(ms.requests, len(ups))
			if ms.predatesBatches && batch {
				reply(m, events.Ack{}) // it finds no task id: nothing to record
				return
			}
			for _, u := range ups {
				if key := u.TaskID + string(u.State); u.State == events.TaskRunning && !ms.dropped[key] {
					ms.dropped[key] = true // a master too busy: no answer
					return
				}
			}
			ms.statuses = append(ms.statuses, ups...)
			if !batch {
				reply(m, events.Ack{})
				return
			}
			acks := make([]events.TaskAck, len(ups))
			for i, u := range ups {
				acks[i] = events.TaskAck{TaskID: u.TaskID}
			}
			reply(m, events.AckBatch{Acks: acks})
		},
	}
	for subj, h := range subs {
		if _, err := nc.Subscribe(subj, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func (ms *masterSide) report() []events.TaskReport {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.lastReport
}

func (ms *masterSide) acked() []string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var out []string
	for _, u := range ms.statuses {
		out = append(out, u.TaskID+" "+string(u.State))
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func request(t *testing.T, nc *nats.Conn, subj string, v any) (events.Ack, time.Duration) {
	t.Helper()
	data, _ := json.Marshal(v)
	if raw, ok := v.([]byte); ok {
		data = raw
	}
	start := time.Now()
	m, err := nc.Request(subj, data, 5*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subj, err)
	}
	var ack events.Ack
	if err := json.Unmarshal(m.Data, &ack); err != nil {
		t.Fatalf("ack %q: %v", m.Data, err)
	}
	return ack, time.Since(start)
}

// TestSimAgentSpeaksTheAgentProtocol drives one simulated agent as the
// master would and checks it answers as agent.Agent does: registration
// under its node name with its reports, a launch acked after the launch
// delay with TASK_STAGING reported meanwhile, typed refusals, status
// updates in order and retried until acked, a killed task reported until
// its TASK_KILLED is acked, and registering again when asked.
func TestSimAgentSpeaksTheAgentProtocol(t *testing.T) {
	n := eventstest.StartNATS(t)
	const node = "sim-node-1"
	ms := &masterSide{dropped: map[string]bool{}}
	mnc := n.ConnectAs(t, natsauth.RoleMaster, "master-1")
	ms.serve(t, mnc)

	a, err := New(Config{
		NC: n.ConnectAs(t, natsauth.RoleAgent, node), Node: node,
		Resources:         events.Resources{Cpus: 8, Mem: 1024},
		HeartbeatInterval: 20 * time.Millisecond,
		LaunchDelay:       300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	waitFor(t, "registration", func() bool { return a.ID() == "agent-id-1" })
	ms.mu.Lock()
	reg := ms.registers[0]
	ms.mu.Unlock()
	if reg.Hostname != node || reg.Resources.Cpus != 8 || reg.AgentID != "" {
		t.Fatalf("first registration %+v: want hostname %s, 8 cpus, no id", reg, node)
	}

	s := events.Subjects{}
	launch := events.LaunchRequest{Task: events.Task{ID: "app.t1", AppID: "/app"}, Cmd: "sleep 1"}
	acked := make(chan events.Ack, 1)
	var took time.Duration
	go func() {
		ack, d := request(t, mnc, s.Launch(node), launch)
		took = d
		acked <- ack
	}()
	waitFor(t, "TASK_STAGING in a heartbeat while the launch is on its way", func() bool {
		r := ms.report()
		return len(r) == 1 && r[0].TaskID == "app.t1" && r[0].State == events.TaskStaging
	})
	if ack := <-acked; ack != (events.Ack{}) || took < 300*time.Millisecond {
		t.Fatalf("launch: ack %+v after %s, want a plain ack after the 300ms launch delay", ack, took)
	}
	waitFor(t, "TASK_RUNNING acked (after a first send went unanswered)", func() bool {
		return len(ms.acked()) == 1
	})

	for _, c := range []struct {
		subj string
		body any
		want events.AckCode
	}{
		{s.Launch(node), launch, events.AckTaskExists},
		{s.Kill(node), events.KillRequest{TaskID: "nope"}, events.AckUnknownTask},
		{s.Launch(node), []byte("{"), events.AckBadRequest},
		{s.Kill(node), []byte("{"), events.AckBadRequest},
	} {
		if ack, _ := request(t, mnc, c.subj, c.body); ack.Code != c.want || ack.Error == "" {
			t.Errorf("%s %v: ack %+v, want code %s with a message", c.subj, c.body, ack, c.want)
		}
	}

	if ack, _ := request(t, mnc, s.Kill(node), events.KillRequest{TaskID: "app.t1"}); ack != (events.Ack{}) {
		t.Fatalf("kill: ack %+v", ack)
	}
	waitFor(t, "the killed task gone from the reports once TASK_KILLED is acked", func() bool {
		return len(ms.acked()) == 3 && len(ms.report()) == 0
	})
	want := []string{"app.t1 TASK_RUNNING", "app.t1 TASK_KILLING", "app.t1 TASK_KILLED"}
	for i, got := range ms.acked() {
		if got != want[i] {
			t.Fatalf("statuses acked %v, want %v", ms.acked(), want)
		}
	}

	// A second task, then the master forgets the agent.
	if ack, _ := request(t, mnc, s.Launch(node), events.LaunchRequest{Task: events.Task{ID: "app.t2", AppID: "/app"}}); ack != (events.Ack{}) {
		t.Fatalf("launch t2: %+v", ack)
	}
	ms.mu.Lock()
	ms.reregister = true
	ms.mu.Unlock()
	waitFor(t, "a second registration with the agent's id and task", func() bool {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		if len(ms.registers) < 2 {
			return false
		}
		r := ms.registers[1]
		return r.AgentID == "agent-id-1" && len(r.Tasks) == 1 && r.Tasks[0].TaskID == "app.t2"
	})

	// A batch: an ack per task, in order.
	data, _ := json.Marshal(events.LaunchBatch{Launches: []events.LaunchRequest{
		{Task: events.Task{ID: "app.t2", AppID: "/app"}}, {Task: events.Task{ID: "app.t3", AppID: "/app"}},
	}})
	msg, err := mnc.Request(s.Launch(node), data, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var batch events.AckBatch
	if err := json.Unmarshal(msg.Data, &batch); err != nil || len(batch.Acks) != 2 ||
		batch.Acks[0].TaskID != "app.t2" || batch.Acks[0].Code != events.AckTaskExists ||
		batch.Acks[1].TaskID != "app.t3" || batch.Acks[1].Error != "" || batch.Acks[1].Launch == nil {
		t.Errorf("batch of launches answered %s (%v), want t2 task_exists and t3 acked with its launch mark", msg.Data, err)
	}

	c := a.Counters().Snapshot()
	if c.KillsOfAcked != 1 || c.KillUnknown != 1 || c.LaunchDup != 2 || c.StatusRetries < 1 || c.ReregisterAsks != 1 {
		t.Errorf("counters %s: want 1 kill of an acked task, 1 of an unknown one, 2 launches already held, a status retry, 1 re-registration ask", c)
	}
}

// TestSimAgentBatchesStatuses: the updates a simulated agent queued while
// it was not registered reach the master in one request, a StatusBatch,
// answered with an ack per update; a master from before batches gets
// them one at a time, in order.
func TestSimAgentBatchesStatuses(t *testing.T) {
	for _, old := range []bool{false, true} {
		t.Run(map[bool]string{false: "batch", true: "old master"}[old], func(t *testing.T) {
			n := eventstest.StartNATS(t)
			const node = "sim-node-1"
			ms := &masterSide{dropped: map[string]bool{}, refuseRegister: true, predatesBatches: old}
			mnc := n.ConnectAs(t, natsauth.RoleMaster, "master-1")
			ms.serve(t, mnc)
			for _, id := range []string{"app.t1", "app.t2", "app.t3"} {
				ms.dropped[id+string(events.TaskRunning)] = true // answered the first time
			}
			a, err := New(Config{NC: n.ConnectAs(t, natsauth.RoleAgent, node), Node: node,
				Resources: events.Resources{Cpus: 8, Mem: 1024}, HeartbeatInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			})
			waitFor(t, "a registration attempt", func() bool {
				ms.mu.Lock()
				defer ms.mu.Unlock()
				return len(ms.registers) > 0
			})
			data, _ := json.Marshal(events.LaunchBatch{Launches: []events.LaunchRequest{
				{Task: events.Task{ID: "app.t1", AppID: "/app"}}, {Task: events.Task{ID: "app.t2", AppID: "/app"}},
				{Task: events.Task{ID: "app.t3", AppID: "/app"}},
			}})
			if _, err := mnc.Request(events.Subjects{}.Launch(node), data, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			ms.mu.Lock()
			ms.refuseRegister = false
			ms.mu.Unlock()
			waitFor(t, "the three TASK_RUNNING acked", func() bool { return len(ms.acked()) == 3 })
			want := []string{"app.t1 TASK_RUNNING", "app.t2 TASK_RUNNING", "app.t3 TASK_RUNNING"}
			if got := ms.acked(); !slices.Equal(got, want) {
				t.Errorf("statuses recorded %v, want %v", got, want)
			}
			ms.mu.Lock()
			requests := slices.Clone(ms.requests)
			ms.mu.Unlock()
			wantRequests := []int{3}
			if old {
				wantRequests = []int{3, 1, 1, 1}
			}
			if !slices.Equal(requests, wantRequests) {
				t.Errorf("status requests carried %v updates each, want %v", requests, wantRequests)
			}
			// The agent counts an ack when the reply reaches it, a moment
			// after the master recorded the updates.
			waitFor(t, fmt.Sprintf("the counters to show %d status requests acking 3 updates", len(wantRequests)), func() bool {
				c := a.Counters().Snapshot()
				return c.StatusAcked == 3 && c.StatusSent == int64(len(wantRequests))
			})
		})
	}
}

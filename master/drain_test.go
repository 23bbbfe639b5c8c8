package master

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
)

// TestKillWaitsForDrain checks the order sidecars rely on: a serving task
// is published TASK_KILLING first, and its agent hears of the kill only
// after the drain delay; a task that never served is killed at once.
func TestKillWaitsForDrain(t *testing.T) {
	const drain = 300 * time.Millisecond
	m, _, ns := leadingMasterOn(t)
	m.cfg.KillDrainDelay = drain
	addAgent(t, m, "h1", "127.0.0.9")

	type seen struct {
		what string
		at   time.Time
	}
	got := make(chan seen, 16)
	sub := func(nc *nats.Conn, subject string, on func(*nats.Msg)) {
		s, err := nc.Subscribe(subject, on)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Unsubscribe() })
	}
	// The kill reaches the agent of h1: a connection with its credential.
	agentNC := ns.ConnectAs(t, natsauth.RoleAgent, "h1")
	sub(agentNC, m.cfg.Subjects.Kill("h1"), func(msg *nats.Msg) {
		reqs, _, err := events.DecodeKills(msg.Data)
		if err != nil {
			t.Errorf("kill request: %v", err)
		}
		reply := events.AckBatch{Acks: []events.TaskAck{}}
		for _, req := range reqs {
			got <- seen{"kill " + req.TaskID, time.Now()}
			reply.Acks = append(reply.Acks, events.TaskAck{TaskID: req.TaskID})
		}
		data, _ := json.Marshal(reply)
		_ = msg.Respond(data)
	})
	sub(m.cfg.NC, m.cfg.Subjects.AllEvents(), func(msg *nats.Msg) {
		ev, err := events.DecodeEvent(msg.Data)
		if err == nil && ev.Type == events.TaskUpdated && ev.Task.State == events.TaskKilling {
			got <- seen{"killing " + ev.Task.ID, time.Now()}
		}
	})
	for _, nc := range []*nats.Conn{m.cfg.NC, agentNC} {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}

	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 2}`)
	reconcile(t, m)
	staged := tasksIn(m, "/web", events.TaskStaging)
	if len(staged) != 2 {
		t.Fatalf("%d tasks staged, want 2", len(staged))
	}
	serving, fresh := staged[0], staged[1]
	setStatus(t, m, serving.ID, events.TaskRunning)
	setStatus(t, m, fresh.ID, events.TaskStarting)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, _, err := m.KillTasks("/web", []string{serving.ID, fresh.ID}, true, true); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sends, _ := reconcile(t, m)
	for _, send := range sends {
		go send(ctx)
	}

	at := map[string]time.Time{}
	deadline := time.After(5 * time.Second)
	for len(at) < 4 {
		select {
		case s := <-got:
			at[s.what] = s.at
		case <-deadline:
			t.Fatalf("saw only %v", at)
		}
	}
	if !at["killing "+serving.ID].Before(at["kill "+serving.ID]) {
		t.Errorf("the agent heard of the kill before TASK_KILLING was published")
	}
	if d := at["kill "+serving.ID].Sub(start); d < drain {
		t.Errorf("serving task's kill sent %v after it began draining, want at least %v", d, drain)
	}
	if d := at["kill "+fresh.ID].Sub(start); d >= drain {
		t.Errorf("a task that never served waited %v for its kill, want no drain delay", d)
	}
}

package master

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
)

// TestLaunchCarriesTheAppsLimits: the agent holds a task to its app's
// cpus and mem (cgroups), so the launch request says them.
func TestLaunchCarriesTheAppsLimits(t *testing.T) {
	m, _, ns := leadingMasterOn(t)
	addAgent(t, m, "h1", "127.0.0.11")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 1, "cpus": 0.25, "mem": 48}`)
	sends, _ := reconcile(t, m)

	got := make(chan []events.LaunchRequest, 1)
	nc := ns.ConnectAs(t, natsauth.RoleAgent, "h1")
	if _, err := nc.Subscribe(m.cfg.Subjects.Launch("h1"), func(msg *nats.Msg) {
		reqs, _, err := events.DecodeLaunches(msg.Data)
		if err != nil {
			t.Errorf("decode launches: %v", err)
		}
		reply := events.AckBatch{Acks: []events.TaskAck{}}
		for _, r := range reqs {
			reply.Acks = append(reply.Acks, events.TaskAck{TaskID: r.Task.ID})
		}
		data, _ := json.Marshal(reply)
		_ = msg.Respond(data)
		got <- reqs
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	runAll(sends)
	select {
	case reqs := <-got:
		if len(reqs) != 1 || reqs[0].Limits == nil || *reqs[0].Limits != (events.TaskLimits{Cpus: 0.25, Mem: 48}) {
			t.Fatalf("launches = %+v, want one with limits cpus 0.25, mem 48", reqs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no launch request reached the agent")
	}
}

package agent

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// A launch's ack says where the agent took the task (its run and count),
// and every heartbeat says how far it had taken launches when it listed
// its tasks: a heartbeat whose mark covers the ack's lists the task. The
// master orders the two by these marks rather than by when it handled
// them (issue 13: a busy master killed tasks the agents ran).
func TestLaunchAckAndHeartbeatCarryLaunchMarks(t *testing.T) {
	env := newTestEnv(t)
	a := env.start(env.newAgent(env.config()))
	env.registered(a)
	data, _ := json.Marshal(events.LaunchBatch{Launches: []events.LaunchRequest{shellTask("m.1", "exec sleep 30"), shellTask("m.2", "exec sleep 30")}})
	msg, err := env.nc.Request(env.subj.Launch(testNode), data, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var reply events.AckBatch
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		t.Fatal(err)
	}
	if len(reply.Acks) != 2 || reply.Acks[0].Launch == nil || reply.Acks[1].Launch == nil {
		t.Fatalf("acks %+v, want two with launch marks", reply.Acks)
	}
	first, second := reply.Acks[0].Launch, reply.Acks[1].Launch
	if first.Run == "" || second.Run != first.Run || second.N != first.N+1 {
		t.Fatalf("marks %+v then %+v, want one run, counted on", first, second)
	}
	waitFor(t, 10*time.Second, "a heartbeat made after both launches", func() bool {
		env.master.mu.Lock()
		defer env.master.mu.Unlock()
		for _, hb := range env.master.heartbeats {
			if covers, known := hb.Launches.Covers(second); known && covers {
				return len(hb.Tasks) == 2
			}
		}
		return false
	})
}

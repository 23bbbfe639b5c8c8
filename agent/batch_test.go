package agent

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// requestBatch sends a batch to subject and decodes the agent's AckBatch.
func (e *testEnv) requestBatch(subject string, v any) events.AckBatch {
	e.t.Helper()
	data, _ := json.Marshal(v)
	msg, err := e.nc.Request(subject, data, 10*time.Second)
	if err != nil {
		e.t.Fatalf("request %s: %v", subject, err)
	}
	var reply events.AckBatch
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		e.t.Fatalf("decode ack batch: %v", err)
	}
	return reply
}

// TestLaunchBatch: one request starts several tasks, each as a lone launch
// would, and the one reply acks each: a repeated launch is task_exists, a
// launch that cannot start is refused alone. A batch of kills is answered
// the same way, a task the agent does not run as unknown_task.
func TestLaunchBatch(t *testing.T) {
	env := newTestEnv(t)
	a := env.start(env.newAgent(env.config()))
	env.registered(a)

	if ack := env.launch("", shellTask("b.1", "exec sleep 300")); ack.Error != "" {
		t.Fatalf("lone launch: %s", ack.Error)
	}
	reply := env.requestBatch(env.subj.Launch(testNode), events.LaunchBatch{Launches: []events.LaunchRequest{
		shellTask("b.1", "exec sleep 300"), // again: already runs
		shellTask("b.2", "exec sleep 300"),
		{Task: events.Task{ID: "../b.3"}, Cmd: "true"},
		shellTask("b.4", "exec sleep 300"),
	}})
	want := []struct {
		id   string
		code events.AckCode
	}{{"b.1", events.AckTaskExists}, {"b.2", ""}, {"../b.3", events.AckRefused}, {"b.4", ""}}
	if len(reply.Acks) != len(want) {
		t.Fatalf("acks %+v, want %d", reply.Acks, len(want))
	}
	for i, w := range want {
		if got := reply.Acks[i]; got.TaskID != w.id || got.Code != w.code || (w.code == "") != (got.Error == "") {
			t.Errorf("ack %d = %+v, want task %s code %q", i, got, w.id, w.code)
		}
	}
	env.master.waitStatus(t, "b.2", events.TaskRunning)
	env.master.waitStatus(t, "b.4", events.TaskRunning)

	kills := env.requestBatch(env.subj.Kill(testNode), events.KillBatch{Kills: []events.KillRequest{
		{TaskID: "b.2", KillGracePeriod: time.Second}, {TaskID: "ghost"},
	}})
	if len(kills.Acks) != 2 || kills.Acks[0] != (events.TaskAck{TaskID: "b.2"}) || kills.Acks[1].Code != events.AckUnknownTask {
		t.Errorf("kill acks %+v, want b.2 acked and ghost unknown_task", kills.Acks)
	}
	env.master.waitStatus(t, "b.2", events.TaskKilled)
}

// TestLaunchUndecodable: what the agent cannot read is refused with a
// bad_request ack, never ignored.
func TestLaunchUndecodable(t *testing.T) {
	env := newTestEnv(t)
	a := env.start(env.newAgent(env.config()))
	env.registered(a)
	for _, subject := range []string{env.subj.Launch(testNode), env.subj.Kill(testNode)} {
		for _, body := range []string{`{`, `{"launches": 3}`, `{"kills": [{"taskId": 1}]}`} {
			msg, err := env.nc.Request(subject, []byte(body), 10*time.Second)
			if err != nil {
				t.Fatalf("%s %s: %v", subject, body, err)
			}
			var ack events.Ack
			if err := json.Unmarshal(msg.Data, &ack); err != nil || ack.Code == "" || ack.Error == "" {
				t.Errorf("%s %s: ack %s, want a refusal", subject, body, msg.Data)
			}
		}
	}
}

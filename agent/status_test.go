package agent

import (
	"fmt"
	"testing"

	"github.com/atollhq/atoll/events"
)

// TestStatusQueueBounded: while the master is out of reach, a queue fed
// without end stays within its bound, yet still holds each task's newest
// update, its final one, and a health update that hit the failure limit;
// the onAck of every update it dropped still runs once its task's newer
// update is acked.
func TestStatusQueueBounded(t *testing.T) {
	q := newStatusQueue()
	const tasks = 50
	acks, wantAcks := 0, 0
	last := map[string]string{} // task → message of its newest update
	health := func(task, msg string, limit bool) statusItem {
		return statusItem{upd: events.StatusUpdate{TaskID: task, State: events.TaskRunning, Message: msg,
			HealthCheckResults: []events.HealthCheckResult{{Alive: !limit}}}, replaceable: !limit}
	}
	for round := range 4 * statusQueueBound / tasks {
		for i := range tasks {
			task := fmt.Sprintf("t%d", i)
			msg := fmt.Sprintf("r%d", round)
			switch {
			case i == 7 && round == 10:
				q.pushHealth(health(task, "limit", true))
			case i%2 == 0:
				wantAcks++
				q.push(statusItem{upd: events.StatusUpdate{TaskID: task, State: events.TaskRunning, Message: msg}, onAck: func() { acks++ }})
			default:
				q.pushHealth(health(task, msg, false))
			}
			last[task] = msg
			if n := len(q.items); n > statusQueueBound {
				t.Fatalf("round %d: %d updates queued, bound %d", round, n, statusQueueBound)
			}
		}
	}
	wantAcks++
	q.push(statusItem{upd: events.StatusUpdate{TaskID: "t3", State: events.TaskKilled, Message: "final"}, onAck: func() { acks++ }})
	last["t3"] = "final"

	newest := map[string]string{}
	sawLimit := false
	for _, it := range q.items {
		newest[it.upd.TaskID] = it.upd.Message
		sawLimit = sawLimit || it.upd.TaskID == "t7" && it.upd.Message == "limit"
	}
	for task, msg := range last {
		if newest[task] != msg {
			t.Errorf("task %s: newest queued update %q, want %q", task, newest[task], msg)
		}
	}
	if !sawLimit {
		t.Error("the update that hit t7's failure limit was dropped for later health")
	}
	if q.superseded == 0 {
		t.Error("nothing was dropped: the test did not go past the bound")
	}
	for {
		n := len(q.take(maxStatusesPerRequest))
		if n == 0 {
			break
		}
		for _, it := range q.acked(n) {
			if it.onAck != nil {
				it.onAck()
			}
		}
	}
	if acks != wantAcks {
		t.Errorf("%d onAck calls, want %d (one per update pushed with one)", acks, wantAcks)
	}
}

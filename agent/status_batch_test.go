package agent

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// queueStatuses launches n tasks that end at once while the master
// answers no status request, and waits until the agent sends their 2n
// updates (TASK_RUNNING, TASK_FINISHED each) in one request; it then has
// the master answer again and returns the tasks' ids.
func queueStatuses(t *testing.T, env *testEnv, n int) []string {
	t.Helper()
	b := env.newAgent(env.config())
	b.statusTimeout = 100 * time.Millisecond
	a := env.start(b)
	id := env.registered(a)

	env.master.mu.Lock()
	env.master.dropStatus = 1 << 30
	env.master.mu.Unlock()
	var ids []string
	for i := range n {
		task := fmt.Sprintf("queued.%d", i)
		if ack := env.launch(id, shellTask(task, "true")); ack.Error != "" {
			t.Fatalf("launch %s: %s", task, ack.Error)
		}
		ids = append(ids, task)
	}
	waitFor(t, 20*time.Second, "a status request carrying every queued update", func() bool {
		return slices.ContainsFunc(env.master.statusRequestsSeen(), func(r statusRequest) bool { return r.updates == 2*n })
	})
	env.master.mu.Lock()
	env.master.dropStatus = 0
	env.master.mu.Unlock()
	for _, task := range ids {
		env.master.waitStatus(t, task, events.TaskFinished)
	}
	for _, task := range ids {
		if got := env.master.states(task); !slices.Equal(got, []events.TaskState{events.TaskRunning, events.TaskFinished}) {
			t.Errorf("%s: master recorded %v, want RUNNING, FINISHED in order, once each", task, got)
		}
	}
	return ids
}

// answered is the status requests the master answered.
func answered(reqs []statusRequest) []statusRequest {
	var out []statusRequest
	for _, r := range reqs {
		if r.answered {
			out = append(out, r)
		}
	}
	return out
}

// TestStatusUpdatesBatched: the updates an agent has queued reach the
// master in one request, a StatusBatch, rather than one round trip each.
func TestStatusUpdatesBatched(t *testing.T) {
	env := newTestEnv(t)
	const n = 5
	queueStatuses(t, env, n)
	got := answered(env.master.statusRequestsSeen())
	if len(got) != 1 || !got[0].batch || got[0].updates != 2*n {
		t.Errorf("requests the master answered: %+v; want one batch of %d updates", got, 2*n)
	}
}

// TestStatusUpdatesToOldMaster: a master from before status batches
// answers a batch with a plain Ack and records nothing; the agent then
// sends the updates one at a time, and the master gets every one.
func TestStatusUpdatesToOldMaster(t *testing.T) {
	env := newTestEnv(t)
	env.master.mu.Lock()
	env.master.predatesBatches = true
	env.master.mu.Unlock()
	const n = 3
	queueStatuses(t, env, n)
	got := answered(env.master.statusRequestsSeen())
	if len(got) == 0 || !got[0].batch {
		t.Fatalf("requests the master answered: %+v; want a batch first", got)
	}
	lone := 0
	for _, r := range got[1:] {
		if !r.batch && r.updates == 1 {
			lone++
		}
	}
	if lone != 2*n {
		t.Errorf("requests the master answered: %+v; want a batch then %d lone updates", got, 2*n)
	}
}

// TestStatusBatchPartlyAcked: when the master acks only the first
// updates of a batch (it could not stage the next), the agent sends the
// rest again, in order, until each is acked once.
func TestStatusBatchPartlyAcked(t *testing.T) {
	env := newTestEnv(t)
	env.master.mu.Lock()
	env.master.batchAcks = 3
	env.master.mu.Unlock()
	const n = 5
	queueStatuses(t, env, n)
	var sizes []int
	for _, r := range answered(env.master.statusRequestsSeen()) {
		sizes = append(sizes, r.updates)
	}
	if want := []int{10, 7, 4, 1}; !slices.Equal(sizes, want) {
		t.Errorf("answered requests carried %v updates, want %v (3 acked each time, the rest sent again)", sizes, want)
	}
}

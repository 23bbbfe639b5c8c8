package master

import (
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// TestFailingUpgradeHaltsAndRollsBack: a new version whose tasks keep
// failing stops after deploymentFailureLimit failures with the old tasks
// serving, says why, and DELETE /v2/deployments/{id} brings the old
// version back without restarting its tasks.
func TestFailingUpgradeHaltsAndRollsBack(t *testing.T) {
	m, clock := leadingMaster(t)
	addAgent(t, m, "h1", "127.0.0.9")
	addAgent(t, m, "h2", "127.0.0.10")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 2, "backoffSeconds": 1, "backoffFactor": 1}`)
	reconcile(t, m)
	old := tasksIn(m, "/web", events.TaskStaging)
	for _, task := range old {
		setStatus(t, m, task.ID, events.TaskRunning)
	}
	reconcile(t, m) // the creation converges

	clock.Advance(time.Second)
	_, err := m.UpdateApp("/web", func(a *events.App) (events.App, error) {
		next := *a
		next.Cmd = "exit 1"
		return next, nil
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	dep, _ := m.deploymentOfLocked("/web")
	for failed := 0; failed < deploymentFailureLimit; {
		clock.Advance(2 * time.Second) // past the launch backoff
		reconcile(t, m)
		staged := tasksIn(m, "/web", events.TaskStaging)
		if len(staged) == 0 {
			t.Fatalf("after %d failures: no new task staged", failed)
		}
		for _, s := range staged {
			setStatus(t, m, s.ID, events.TaskFailed)
			failed++
		}
	}
	clock.Advance(2 * time.Second)
	reconcile(t, m)
	reconcile(t, m)
	halted, ok := m.deploymentOfLocked("/web")
	if !ok || !strings.Contains(halted.Failed, "failed in a row") || !strings.Contains(halted.Failed, dep.ID) {
		t.Fatalf("deployment %+v, want halted with a reason naming it", halted)
	}
	if why := waitingReason(m, "/web"); why != "failed: "+halted.Failed {
		t.Fatalf("waiting %q, want the halt reason", why)
	}
	if n := len(tasksIn(m, "/web", events.TaskStaging)); n != 0 {
		t.Fatalf("%d new tasks staged after the halt", n)
	}
	running := tasksIn(m, "/web", events.TaskRunning)
	if len(running) != 2 || running[0].ID != old[0].ID && running[0].ID != old[1].ID {
		t.Fatalf("running after the halt: %v, want the 2 old tasks", ids(running))
	}

	// Roll back: the old config is current again; nothing restarts.
	if _, err := m.CancelDeployment(halted.ID, false); err != nil {
		t.Fatal(err)
	}
	reconcile(t, m)
	reconcile(t, m)
	var app events.App
	m.View(func(s *events.State) { app = s.Apps["/web"] })
	if app.Cmd != "sleep 100" {
		t.Fatalf("cmd after rollback %q", app.Cmd)
	}
	if n := len(tasksIn(m, "/web", events.TaskStaging)) + len(tasksIn(m, "/web", events.TaskKilling)); n != 0 {
		t.Fatalf("rollback started or killed %d tasks; the old ones should just be current", n)
	}
	if _, ok := m.deploymentOfLocked("/web"); ok {
		t.Fatal("rollback deployment still open")
	}
}

package master

import (
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// TestHealthResults: the agent's check results land on the task, the
// verdict decides readiness, and a check that failed
// maxConsecutiveFailures times in a row gets the task killed and replaced.
func TestHealthResults(t *testing.T) {
	m, clock := leadingMaster(t)
	agentID := addAgent(t, m, "h1", "127.0.0.9")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 1,
		"healthChecks": [{"protocol": "HTTP", "path": "/health", "maxConsecutiveFailures": 3}]}`)
	sends, _ := reconcile(t, m)
	if len(sends) != 1 {
		t.Fatalf("%d sends, want 1 launch", len(sends))
	}
	task := tasksIn(m, "/web", events.TaskStaging)[0]
	setStatus(t, m, task.ID, events.TaskRunning)

	report := func(alive bool, failures int, cause string) {
		t.Helper()
		at := clock.Now()
		r := events.HealthCheckResult{Alive: alive, ConsecutiveFailures: failures, LastFailureCause: cause}
		if alive {
			r.LastSuccess = &at
		} else {
			r.LastFailure = &at
		}
		ack, err := m.recordStatus(nodeOf(m, agentID), events.StatusUpdate{
			AgentID: agentID, TaskID: task.ID, State: events.TaskRunning, Healthy: &alive,
			HealthCheckResults: []events.HealthCheckResult{r}, Time: at,
		}, func() {})
		if err != nil || !ack {
			t.Fatalf("status not recorded: ack %v, err %v", ack, err)
		}
	}
	get := func() events.Task {
		var got events.Task
		m.View(func(s *events.State) { got = s.Tasks[task.ID] })
		return got
	}

	report(true, 0, "")
	got := get()
	if got.Healthy == nil || !*got.Healthy || len(got.HealthCheckResults) != 1 || got.HealthCheckResults[0].TaskID != task.ID {
		t.Fatalf("after a healthy report: %+v", got)
	}
	for failures := 1; failures < 3; failures++ {
		report(false, failures, "HTTP 500")
		if got := get(); got.State != events.TaskRunning || *got.Healthy {
			t.Fatalf("after %d failures: state %s healthy %v, want running and unhealthy", failures, got.State, *got.Healthy)
		}
	}
	report(false, 3, "HTTP 500")
	got = get()
	if got.State != events.TaskKilling || !strings.Contains(got.Message, "failed 3 times in a row: HTTP 500") {
		t.Fatalf("after 3 failures: %s %q, want TASK_KILLING with the cause", got.State, got.Message)
	}
	// The next pass sends the kill and stages a replacement.
	clock.Advance(time.Millisecond)
	reconcile(t, m)
	if n := len(tasksIn(m, "/web", events.TaskStaging)); n != 1 {
		t.Fatalf("%d replacements staged, want 1", n)
	}
}

func TestFailedTooOften(t *testing.T) {
	app := events.App{HealthChecks: []events.HealthCheck{{MaxConsecutiveFailures: 3}, {MaxConsecutiveFailures: 0}}}
	for _, tc := range []struct {
		name    string
		results []events.HealthCheckResult
		kill    bool
	}{
		{"below the limit", []events.HealthCheckResult{{ConsecutiveFailures: 2}, {Alive: true}}, false},
		{"at the limit", []events.HealthCheckResult{{ConsecutiveFailures: 3}, {Alive: true}}, true},
		{"alive again", []events.HealthCheckResult{{Alive: true, ConsecutiveFailures: 0}, {Alive: true}}, false},
		{"limit 0 never kills", []events.HealthCheckResult{{Alive: true}, {ConsecutiveFailures: 50}}, false},
		{"more results than checks", []events.HealthCheckResult{{Alive: true}, {Alive: true}, {ConsecutiveFailures: 9}}, false},
	} {
		if got := failedTooOften(app, tc.results) != ""; got != tc.kill {
			t.Errorf("%s: kill %v, want %v", tc.name, got, tc.kill)
		}
	}
}

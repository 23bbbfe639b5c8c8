package master

import (
	"fmt"
	"slices"
	"time"

	"github.com/atollhq/atoll/events"
)

// healthResultsLocked records the check results an agent reported with a
// status update (changes is what the update's state and verdict already
// call for), and kills a task whose check failed maxConsecutiveFailures
// times in a row: the reconcile loop replaces it, as Marathon does.
func (m *Master) healthResultsLocked(t events.Task, up events.StatusUpdate, changes []events.Change, now time.Time) []events.Change {
	if len(changes) > 0 {
		// The update's own change carries the task as it will be.
		if c := changes[len(changes)-1]; c.Task != nil {
			t = *c.Task
		}
	}
	if t.State != events.TaskRunning {
		return changes
	}
	// Agents send results only when a verdict or a failure count that
	// matters changed: take them as they come.
	t.HealthCheckResults = slices.Clone(up.HealthCheckResults)
	for i := range t.HealthCheckResults {
		t.HealthCheckResults[i].TaskID = t.ID
	}
	changes = []events.Change{events.PutTask(t)}
	app, ok := m.state.Apps[t.AppID]
	if !ok {
		return changes
	}
	if why := failedTooOften(app, t.HealthCheckResults); why != "" {
		t.State, t.Message = events.TaskKilling, why
		changes = []events.Change{events.PutTask(t)}
		m.log.Info("killing unhealthy task", "task", t.ID, "why", why)
		m.metrics.unhealthyKills.Inc()
		if current(app, t) {
			m.runtime.deployFailures[app.ID]++
		}
		m.kickReconcile()
	}
	return changes
}

// failedTooOften says why a task must go when one of its checks has failed
// maxConsecutiveFailures (> 0) times in a row, or "".
func failedTooOften(app events.App, results []events.HealthCheckResult) string {
	for i, r := range results {
		if i >= len(app.HealthChecks) {
			break
		}
		limit := app.HealthChecks[i].MaxConsecutiveFailures
		if limit > 0 && !r.Alive && r.ConsecutiveFailures >= limit {
			cause := ""
			if r.LastFailureCause != "" {
				cause = ": " + r.LastFailureCause
			}
			return fmt.Sprintf("health check %d failed %d times in a row%s", i, r.ConsecutiveFailures, cause)
		}
	}
	return ""
}

// readinessLocked records what a task's agent says of its readiness
// checks, on the task as the update's other changes leave it.
func readinessLocked(t events.Task, ready bool, changes []events.Change) []events.Change {
	if len(changes) > 0 {
		if c := changes[len(changes)-1]; c.Task != nil {
			t = *c.Task
		}
	}
	if t.State != events.TaskRunning || (t.Ready != nil && *t.Ready == ready) {
		return changes
	}
	t.Ready = &ready
	return []events.Change{events.PutTask(t)}
}

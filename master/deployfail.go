package master

import (
	"fmt"
	"time"

	"github.com/atollhq/atoll/events"
)

// deploymentFailureLimit is how many tasks of a new config may fail in a
// row, none of them becoming ready, before a deployment that replaces
// serving tasks gives up: past that, retrying only burns capacity while
// the old tasks carry the traffic.
const deploymentFailureLimit = 3

// deploymentOfLocked returns the deployment that holds the app, if any.
func (m *Master) deploymentOfLocked(appID string) (events.Deployment, bool) {
	for _, id := range m.deploymentsOfLocked(appID) {
		return m.state.Deployments[id], true
	}
	return events.Deployment{}, false
}

// holdFailedLocked halts the app's deployment once its new tasks keep
// failing while old ones serve, and keeps a halted deployment where it
// stands: the failing new tasks go, nothing is launched, old tasks stay.
// It reports false when the app's deployment is not halted.
func (m *Master) holdFailedLocked(app events.App, now time.Time) (string, bool) {
	d, ok := m.deploymentOfLocked(app.ID)
	if !ok {
		return "", false
	}
	if d.Failed == "" {
		failures := m.runtime.deployFailures[app.ID]
		if failures < deploymentFailureLimit || !m.oldTasksServeLocked(app) {
			return "", false
		}
		d.Failed = fmt.Sprintf("%d tasks of the new version failed in a row and none became ready; "+
			"the old tasks keep serving (DELETE /v2/deployments/%s rolls back)", failures, d.ID)
		if err := m.commitLocked(events.PutDeployment(d)); err != nil {
			m.log.Warn("halt deployment", "id", d.ID, "err", err)
			return "", false
		}
		m.log.Warn("deployment halted", "id", d.ID, "app", app.ID, "failures", failures)
	}
	for _, t := range m.state.TasksOf(app.ID) {
		if t.State != events.TaskKilling && !t.State.Terminal() && current(app, t) && !ready(app, t) {
			m.killLocked(t.ID, now)
		}
	}
	return "failed: " + d.Failed, true
}

// oldTasksServeLocked reports whether tasks of an earlier config of the app
// are ready: only then is there a safe point to hold at.
func (m *Master) oldTasksServeLocked(app events.App) bool {
	for _, t := range m.state.TasksOf(app.ID) {
		if !current(app, t) && ready(app, t) {
			return true
		}
	}
	return false
}

// rollbackLocked ends deployment d and undoes it: the app goes back to
// d.Original (whose tasks are current again, so the new ones are
// replaced by the upgrade strategy), or is removed if d created it.
func (m *Master) rollbackLocked(d events.Deployment) (Change, error) {
	now := m.cfg.Now().UTC()
	if len(d.AffectedApps) == 0 {
		return Change{Deployment: d}, m.commitLocked(events.DeleteDeployment(d.ID))
	}
	if stepped(d) {
		return m.rollbackStepsLocked(d) // groups_deploy.go
	}
	appID := d.AffectedApps[0]
	m.runtime.resetBackoff(appID)
	if d.Original == nil {
		if err := m.commitLocked(events.DeleteDeployment(d.ID)); err != nil {
			return Change{}, fmt.Errorf("roll back deployment %s: %w", d.ID, err)
		}
		if _, ok := m.state.Apps[appID]; !ok {
			return Change{Deployment: d}, nil
		}
		return m.deployLocked(m.state.Apps[appID], "StopApplication", now, events.DeleteApp(appID))
	}
	app := *d.Original
	now = m.versionTimeLocked(appID)
	app.Version = now
	if err := m.commitLocked(events.DeleteDeployment(d.ID)); err != nil {
		return Change{}, fmt.Errorf("roll back deployment %s: %w", d.ID, err)
	}
	return m.deployLocked(app, "RollbackApplication", now, events.PutApp(app))
}

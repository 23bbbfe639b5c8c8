package master

import (
	"fmt"
	"maps"
	"slices"

	"github.com/atollhq/atoll/events"
)

// Deployments of several steps (groups_plan.go): an app waits, changing
// nothing (a new app launches no task, a changed one keeps its old tasks),
// until the step that acts on it comes; a step is done when each of its
// apps is (running its instances of the new version, all healthy, or for
// a stopped app, no task left); then the next one starts.

// heldByStepLocked reports whether the app waits for an earlier step of a
// deployment that holds it, and why.
func (m *Master) heldByStepLocked(appID string) (string, bool) {
	// Deployments of one step hold nothing back: most deployments are,
	// and they are passed over without a look at their apps.
	for _, d := range m.state.Deployments {
		if !stepped(d) {
			continue
		}
		if s := stepOfApp(d, appID); s > d.CurrentStep {
			return fmt.Sprintf("waiting for step %d of %d of deployment %s: the apps it depends on are not all running and healthy yet",
				s, len(d.Steps), d.ID), true
		}
	}
	return "", false
}

// stepped reports whether d is carried out step by step here rather than
// as one step over all its apps.
func stepped(d events.Deployment) bool { return d.Group != "" || len(d.Steps) > 1 }

// actionDoneLocked reports whether action a of step n of d is done.
func (m *Master) actionDoneLocked(d events.Deployment, n int, a events.DeploymentAction) bool {
	if stepOfApp(d, a.App) > n {
		// Created now, brought up by a later step (Marathon's
		// StartApplication with no instance): nothing more to do here.
		return true
	}
	if _, exists := m.state.Apps[a.App]; !exists {
		return m.state.CountTasksOf(a.App) == 0
	}
	return m.runtime.appStatus[a.App].done
}

// progressStepsLocked ends d when its last step is done, starts its next
// step when the current one is, and otherwise records why its current
// actions wait.
func (m *Master) progressStepsLocked(d events.Deployment) {
	if d.Failed != "" {
		return
	}
	done := true
	changed := false
	acts := make([]events.DeploymentAction, len(d.CurrentActions))
	for i, a := range d.CurrentActions {
		if !m.actionDoneLocked(d, d.CurrentStep, a) {
			done = false
		}
		if w := m.runtime.appStatus[a.App].waiting; w != a.Waiting && stepOfApp(d, a.App) == d.CurrentStep {
			a.Waiting, changed = w, true
		}
		acts[i] = a
	}
	switch {
	case done && d.CurrentStep >= len(d.Steps):
		if err := m.commitLocked(events.DeleteDeployment(d.ID)); err != nil {
			m.log.Warn("finish deployment", "id", d.ID, "err", err)
		}
	case done:
		d.CurrentStep++
		d.CurrentActions = slices.Clone(d.Steps[d.CurrentStep-1].Actions)
		if err := m.commitLocked(events.PutDeployment(d)); err != nil {
			m.log.Warn("next deployment step", "id", d.ID, "err", err)
			return
		}
		m.kickReconcile()
	case changed:
		d.CurrentActions = acts
		if err := m.commitLocked(events.PutDeployment(d)); err != nil {
			m.log.Warn("update deployment", "id", d.ID, "err", err)
		}
	}
}

// checkDependenciesLocked refuses a one-app change that would close a
// dependency cycle, as Marathon validates the whole root group on every
// change. Only an app with dependencies of its own, or in a group with
// some, can close one.
func (m *Master) checkDependenciesLocked(app events.App) error {
	relevant := len(app.Dependencies) > 0
	for _, g := range ancestorsOf(app.ID) {
		relevant = relevant || len(m.state.Groups[g].Dependencies) > 0
	}
	if !relevant {
		return nil
	}
	apps := maps.Clone(m.state.Apps)
	apps[app.ID] = app
	return checkNoCycle(apps, m.state.Groups)
}

// rollbackStepsLocked ends a deployment of several apps and undoes it:
// each app and group record it changed or removed goes back to what it
// was, each it created goes, in one new deployment ordered as any other.
func (m *Master) rollbackStepsLocked(d events.Deployment) (Change, error) {
	now := m.changeTimeLocked()
	if err := m.commitLocked(events.DeleteDeployment(d.ID)); err != nil {
		return Change{}, fmt.Errorf("roll back deployment %s: %w", d.ID, err)
	}
	t := m.targetLocked()
	for _, id := range d.AffectedApps {
		delete(t.apps, id)
	}
	for _, a := range d.Originals {
		t.apps[a.ID] = a
	}
	for id, g := range t.groups {
		if len(g.Versions) > 0 && g.Versions[len(g.Versions)-1].Equal(d.Version) {
			delete(t.groups, id) // created by d
		}
	}
	for _, g := range d.OriginalGroups {
		t.groups[g.ID] = g
	}
	path := d.Group
	if path == "" {
		path = rootGroupID
	}
	ch, err := m.deployGroupLocked(path, t, now, true, false)
	return Change{Deployment: ch.Deployment}, err
}

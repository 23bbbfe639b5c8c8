package master

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/master/scheduler"
)

// Operations behind the Marathon API. Each takes a complete, validated app
// definition (the API parses, merges and fills defaults), commits it with a
// deployment, and leaves the work to the reconcile loop.

// Change is what an API operation started.
type Change struct {
	App        events.App
	Deployment events.Deployment
	// Created is true when an update created the app (PUT on a new id).
	Created bool
}

// CreateApp adds a new app.
func (m *Master) CreateApp(app events.App) (Change, error) { return m.CreateAppFor(app, nil) }

// CreateAppFor is CreateApp for an API call (origin, nil for none).
func (m *Master) CreateAppFor(app events.App, origin *events.Origin) (_ Change, err error) {
	defer m.writeLocked()(&err)
	if _, ok := m.state.Apps[app.ID]; ok {
		return Change{}, &ConflictError{Message: fmt.Sprintf("An app with id [%s] already exists.", app.ID)}
	}
	return m.createLocked(app, origin)
}

func (m *Master) createLocked(app events.App, origin *events.Origin) (Change, error) {
	now := m.versionTimeLocked(app.ID)
	app.Version = now
	app.VersionInfo = events.VersionInfo{LastScalingAt: now, LastConfigChangeAt: now}
	if err := m.assignPortsLocked(&app); err != nil {
		return Change{}, err
	}
	m.runtime.resetBackoff(app.ID)
	c := events.PutApp(app)
	c.Origin = origin
	ch, err := m.deployLocked(app, "StartApplication", now, c)
	ch.Created = err == nil
	return ch, err
}

// UpdateApp replaces an app's definition (creating it if it is new) with
// what build makes of the current one (nil when there is none). build runs
// under the state lock, so a partial update never undoes a concurrent one.
// A change of instances alone scales; anything else replaces the tasks.
func (m *Master) UpdateApp(id string, build func(existing *events.App) (events.App, error), force bool) (Change, error) {
	return m.UpdateAppFor(id, build, force, nil)
}

// UpdateAppFor is UpdateApp for an API call (origin, nil for none).
func (m *Master) UpdateAppFor(id string, build func(existing *events.App) (events.App, error), force bool, origin *events.Origin) (_ Change, err error) {
	defer m.writeLocked()(&err)
	var existing *events.App
	old, ok := m.state.Apps[id]
	if ok {
		existing = &old
	}
	app, err := build(existing)
	if err != nil {
		return Change{}, err
	}
	if app.ID != id {
		return Change{}, fmt.Errorf("update app %s: definition is for %s", id, app.ID)
	}
	if !ok {
		return m.createLocked(app, origin)
	}
	if err := m.unlockLocked(id, force); err != nil {
		return Change{}, err
	}
	now := m.versionTimeLocked(id)
	app.Version = now
	action := "ScaleApplication"
	if scalingOnly(old, app) {
		app.VersionInfo = events.VersionInfo{LastScalingAt: now, LastConfigChangeAt: old.VersionInfo.LastConfigChangeAt}
	} else {
		app.VersionInfo = events.VersionInfo{LastScalingAt: now, LastConfigChangeAt: now}
		action = "RestartApplication"
		m.runtime.resetBackoff(app.ID)
	}
	if err := m.assignPortsLocked(&app); err != nil {
		return Change{}, err
	}
	c := events.PutApp(app)
	c.Origin = origin
	return m.deployLocked(app, action, now, c)
}

// scalingOnly reports whether b differs from a in instances (and versions) only.
func scalingOnly(a, b events.App) bool {
	a.Instances, b.Instances = 0, 0
	a.Version, b.Version = time.Time{}, time.Time{}
	a.VersionInfo, b.VersionInfo = events.VersionInfo{}, events.VersionInfo{}
	// Service ports the caller left at 0 keep their assigned values.
	ports := slices.Clone(b.PortDefinitions)
	for i := range ports {
		if i < len(a.PortDefinitions) && ports[i].Port == 0 {
			ports[i].Port = a.PortDefinitions[i].Port
		}
	}
	b.PortDefinitions = ports
	if a.Container != nil && b.Container != nil { // the same for port mappings
		c := *b.Container
		c.PortMappings = slices.Clone(c.PortMappings)
		for i := range c.PortMappings {
			if i < len(a.Container.PortMappings) && c.PortMappings[i].ServicePort == 0 {
				c.PortMappings[i].ServicePort = a.Container.PortMappings[i].ServicePort
			}
		}
		b.Container = &c
	}
	return reflect.DeepEqual(a, b)
}

// RestartApp replaces every task of the app by the upgrade strategy.
func (m *Master) RestartApp(id string, force bool) (_ Change, err error) {
	defer m.writeLocked()(&err)
	app, err := m.changeableLocked(id, force)
	if err != nil {
		return Change{}, err
	}
	now := m.versionTimeLocked(id)
	app.Version = now
	app.VersionInfo = events.VersionInfo{LastScalingAt: now, LastConfigChangeAt: now}
	m.runtime.resetBackoff(id)
	return m.deployLocked(app, "RestartApplication", now, events.PutApp(app))
}

// DeleteApp removes the app; its tasks are killed by the reconcile loop.
func (m *Master) DeleteApp(id string, force bool) (_ Change, err error) {
	defer m.writeLocked()(&err)
	app, err := m.changeableLocked(id, force)
	if err != nil {
		return Change{}, err
	}
	m.runtime.resetBackoff(id)
	return m.deployLocked(app, "StopApplication", m.cfg.Now().UTC(), events.DeleteApp(id))
}

// KillTasks kills tasks of an app. With scale the app shrinks by as many
// instances (a scaling deployment); without, they are replaced.
func (m *Master) KillTasks(appID string, taskIDs []string, scale, force bool) (_ []events.Task, _ *Change, err error) {
	defer m.writeLocked()(&err)
	app, ok := m.state.Apps[appID]
	if !ok {
		return nil, nil, appNotFound(appID)
	}
	var tasks []events.Task
	for _, id := range taskIDs {
		t, ok := m.state.Tasks[id]
		if !ok || t.AppID != appID {
			return nil, nil, &NotFoundError{Message: fmt.Sprintf("Task '%s' does not exist", id)}
		}
		tasks = append(tasks, t)
	}
	var ch *Change
	if scale {
		if err := m.unlockLocked(appID, force); err != nil {
			return nil, nil, err
		}
		now := m.versionTimeLocked(appID)
		app.Instances = max(0, app.Instances-len(tasks))
		app.Version = now
		app.VersionInfo.LastScalingAt = now
		c, err := m.deployLocked(app, "ScaleApplication", now, events.PutApp(app))
		if err != nil {
			return nil, nil, err
		}
		ch = &c
	}
	now := m.cfg.Now()
	for _, t := range tasks {
		// The reconcile loop sends the kill at once (killSent is unset).
		m.markKillingLocked(t.ID, now)
	}
	m.kickReconcile()
	return tasks, ch, nil
}

// changeableLocked returns the app if it exists and no deployment holds it
// (or force cancelled those deployments).
func (m *Master) changeableLocked(id string, force bool) (events.App, error) {
	app, ok := m.state.Apps[id]
	if !ok {
		return events.App{}, appNotFound(id)
	}
	return app, m.unlockLocked(id, force)
}

func (m *Master) assignPortsLocked(app *events.App) error {
	if err := m.servicePortsLocked().Assign(m.state, app); err != nil {
		path := "/portDefinitions"
		if app.Bridged() {
			path = "/container/portMappings"
		}
		return &ValidationError{Details: []FieldErrors{{Path: path, Errors: []string{err.Error()}}}}
	}
	return nil
}

// servicePortsLocked is the count of the working state's service ports,
// made when missing or made for another state.
func (m *Master) servicePortsLocked() *scheduler.ServicePorts {
	r := m.runtime
	if r.servicePorts == nil || r.portsOf != m.state {
		r.servicePorts, r.portsOf = scheduler.NewServicePorts(m.state), m.state
	}
	return r.servicePorts
}

// deployLocked commits an app change together with the deployment that
// carries it out, and wakes the reconcile loop to start on it.
func (m *Master) deployLocked(app events.App, action string, now time.Time, c events.Change) (Change, error) {
	if c.Type == events.AppUpdated {
		if err := m.checkDependenciesLocked(app); err != nil { // groups_deploy.go
			return Change{}, err
		}
	}
	dep := newDeployment(app.ID, action, now)
	if old, ok := m.state.Apps[app.ID]; ok {
		dep.Original = &old
	}
	m.runtime.deployFailures[app.ID] = 0
	var changes []events.Change
	if c.Type == events.AppRemoved {
		// Marathon forgets an app's versions with it. Each is its own
		// record in a store (State.Apply would drop them anyway).
		for _, v := range m.state.AppVersions[app.ID] {
			changes = append(changes, m.forgetAppVersionLocked(app.ID, v.Version)...)
		}
	}
	changes = append(changes, c, events.PutDeployment(dep))
	if c.Type == events.AppUpdated {
		changes = append(changes, m.versionChangesLocked(*c.App)...)
	}
	if err := m.commitLocked(changes...); err != nil {
		return Change{}, fmt.Errorf("%s %s: %w", action, app.ID, err)
	}
	m.kickReconcile()
	return Change{App: app, Deployment: dep}, nil
}

// markKillingLocked commits a task as killing without sending the kill.
func (m *Master) markKillingLocked(id string, now time.Time) {
	t, ok := m.state.Tasks[id]
	if !ok || t.State == events.TaskKilling {
		return
	}
	if t.State == events.TaskUnreachable {
		t.State, t.Message = events.TaskKilled, "killed while its agent was unreachable"
		m.runtime.forgetTask(id)
		if err := m.commitLocked(events.PutTask(t)); err != nil {
			m.log.Warn("kill task", "task", id, "err", err)
		}
		return
	}
	delete(m.runtime.killSent, id)
	m.beginKillingLocked(t, now)
}

// unlockLocked refuses a change to an app that a deployment holds, unless
// forced: then the deployments are cancelled where they stand.
func (m *Master) unlockLocked(appID string, force bool) error {
	ids := m.deploymentsOfLocked(appID)
	if len(ids) == 0 {
		return nil
	}
	if !force {
		return &LockedError{Deployments: ids}
	}
	for _, id := range ids {
		if err := m.commitLocked(events.DeleteDeployment(id)); err != nil {
			return fmt.Errorf("cancel deployment %s: %w", id, err)
		}
	}
	return nil
}

func (m *Master) deploymentsOfLocked(appID string) []string {
	var ids []string
	for _, d := range m.state.Deployments {
		for _, a := range d.AffectedApps {
			if a == appID {
				ids = append(ids, d.ID)
			}
		}
	}
	sort.Strings(ids)
	return ids
}

// CancelDeployment removes a deployment. Rolling back (without force) is
// the rolling-deployments issue's; until then both stop where they stand.
func (m *Master) CancelDeployment(id string, force bool) (_ Change, err error) {
	defer m.writeLocked()(&err)
	d, ok := m.state.Deployments[id]
	if !ok {
		return Change{}, &NotFoundError{Message: fmt.Sprintf("DeploymentPlan %s does not exist", id)}
	}
	if !force {
		return m.rollbackLocked(d)
	}
	if err := m.commitLocked(events.DeleteDeployment(id)); err != nil {
		return Change{}, fmt.Errorf("cancel deployment %s: %w", id, err)
	}
	return Change{Deployment: d}, nil
}

func newDeployment(appID, action string, now time.Time) events.Deployment {
	acts := []events.DeploymentAction{{Action: action, App: appID}}
	return events.Deployment{
		ID:             uuid.NewString(),
		Version:        now,
		AffectedApps:   []string{appID},
		Steps:          []events.DeploymentStep{{Actions: acts}},
		CurrentActions: acts,
		CurrentStep:    1,
		TotalSteps:     1,
	}
}

// updateDeploymentsLocked ends the deployments of the given apps whose
// apps have converged and records why the others wait.
func (m *Master) updateDeploymentsLocked(apps []string) {
	if len(apps) == 0 || len(m.state.Deployments) == 0 {
		return
	}
	touched := make(map[string]bool, len(apps))
	for _, id := range apps {
		touched[id] = true
	}
	var ids []string
	for id, d := range m.state.Deployments {
		if slices.ContainsFunc(d.AffectedApps, func(a string) bool { return touched[a] }) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		d := m.state.Deployments[id]
		if stepped(d) {
			m.progressStepsLocked(d) // groups_deploy.go
			continue
		}
		finished := true
		for _, appID := range d.AffectedApps {
			if _, exists := m.state.Apps[appID]; exists {
				finished = finished && m.runtime.appStatus[appID].done
			} else {
				finished = finished && m.state.CountTasksOf(appID) == 0
			}
		}
		if finished {
			if err := m.commitLocked(events.DeleteDeployment(id)); err != nil {
				m.log.Warn("finish deployment", "id", id, "err", err)
			}
			continue
		}
		changed := false
		acts := make([]events.DeploymentAction, len(d.CurrentActions))
		for i, a := range d.CurrentActions {
			if w := m.runtime.appStatus[a.App].waiting; w != a.Waiting {
				a.Waiting, changed = w, true
			}
			acts[i] = a
		}
		if changed {
			d.CurrentActions = acts
			if err := m.commitLocked(events.PutDeployment(d)); err != nil {
				m.log.Warn("update deployment", "id", id, "err", err)
			}
		}
	}
}

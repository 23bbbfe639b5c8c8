package master

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/atollhq/atoll/events"
)

// Operations behind /v2/groups. A group change is worked out on a copy of
// the apps and group records (a target), checked whole, and committed in
// one batch with the one deployment that carries it out (groups_plan.go
// orders its steps).

// maxGroupVersions bounds the versions a group record keeps: Marathon's
// --zk_max_versions default.
const maxGroupVersions = 50

// groupUpdate is a /v2/groups body (Marathon's GroupUpdate), decoded with
// every id made absolute (groups_decode.go). A nil field was not given.
type groupUpdate struct {
	ID           string
	Apps         *[]events.App
	Groups       *[]groupUpdate
	Dependencies *[]string
	ScaleBy      *float64
	// Version, given alone, rolls the group back to what it held then.
	Version *time.Time
}

// GroupChange is what a group operation started, or with dryRun would.
type GroupChange struct {
	Deployment events.Deployment
	Steps      []events.DeploymentStep
}

// groupTarget is the apps and group records a change leads to.
type groupTarget struct {
	apps   map[string]events.App
	groups map[string]events.Group
}

func (m *Master) targetLocked() groupTarget {
	return groupTarget{apps: maps.Clone(m.state.Apps), groups: maps.Clone(m.state.Groups)}
}

// exists reports whether the group is there: the root, a record, or the
// group of an app or record below it.
func (t groupTarget) exists(id string) bool {
	if id == rootGroupID {
		return true
	}
	if _, ok := t.groups[id]; ok {
		return true
	}
	for a := range t.apps {
		if isUnder(a, id) {
			return true
		}
	}
	for g := range t.groups {
		if isUnder(g, id) {
			return true
		}
	}
	return false
}

// childGroups are the ids of the groups directly below id.
func (t groupTarget) childGroups(id string) map[string]bool {
	out := map[string]bool{}
	note := func(x string, isGroup bool) {
		if !isUnder(x, id) {
			return
		}
		rest := strings.TrimPrefix(x, id)
		rest = strings.TrimPrefix(rest, "/")
		first, _, deeper := strings.Cut(rest, "/")
		if deeper || isGroup {
			out[resolvePath(id, first)] = true
		}
	}
	for a := range t.apps {
		note(a, false)
	}
	for g := range t.groups {
		note(g, true)
	}
	return out
}

// removeBelow removes the group id with everything below it.
func (t groupTarget) removeBelow(id string) {
	for a := range t.apps {
		if isUnder(a, id) {
			delete(t.apps, a)
		}
	}
	for g := range t.groups {
		if g == id || isUnder(g, id) {
			delete(t.groups, g)
		}
	}
}

// touch gives group id (a record made if it has none) version now.
func (t groupTarget) touch(id string, now time.Time) {
	g, ok := t.groups[id]
	if !ok {
		g = events.Group{ID: id}
	}
	if g.Version.Equal(now) {
		return
	}
	g.Version = now
	g.Versions = append([]time.Time{now}, g.Versions...)
	if len(g.Versions) > maxGroupVersions {
		g.Versions = g.Versions[:maxGroupVersions]
	}
	t.groups[id] = g
}

// touchUp gives group id and every group it lives in version now, as
// Marathon's putGroup versions every group on the way to the root.
func (t groupTarget) touchUp(id string, now time.Time) {
	t.touch(id, now)
	for _, g := range ancestorsOf(id) {
		t.touch(g, now)
	}
}

// apply makes group u.ID what u says (Marathon's GroupConversion): given
// apps are exactly its apps, given groups exactly its groups (each
// updated in turn), given dependencies its dependencies; what u leaves
// out stays.
func (t groupTarget) apply(u groupUpdate, now time.Time) {
	t.touch(u.ID, now)
	if u.Dependencies != nil {
		g := t.groups[u.ID]
		g.Dependencies = slices.Clone(*u.Dependencies)
		if len(g.Dependencies) == 0 {
			g.Dependencies = nil
		}
		t.groups[u.ID] = g
	}
	if u.Apps != nil {
		for a := range t.apps {
			if parentOf(a) == u.ID {
				delete(t.apps, a)
			}
		}
		for _, a := range *u.Apps {
			t.apps[a.ID] = a
		}
	}
	if u.Groups != nil {
		keep := map[string]bool{}
		for _, sub := range *u.Groups {
			keep[sub.ID] = true
		}
		for g := range t.childGroups(u.ID) {
			if !keep[g] {
				t.removeBelow(g)
			}
		}
		for _, sub := range *u.Groups {
			t.apply(sub, now)
		}
	}
}

// scale multiplies the instances of every app below id by factor, rounded
// up, as Marathon's scaleBy.
func (t groupTarget) scale(id string, factor float64) {
	for a, app := range t.apps {
		if isUnder(a, id) {
			app = cloneApp(app)
			app.Instances = int(math.Ceil(float64(app.Instances) * factor))
			t.apps[a] = app
		}
	}
}

// check refuses a target Marathon's root group validation refuses: an app
// with a group's id, or more instances than the operator allows.
func (t groupTarget) check(lim appLimits) error {
	var errs fieldErrs
	ids := slices.Sorted(maps.Keys(t.apps))
	for i, id := range ids {
		_, isGroup := t.groups[id]
		if isGroup || i+1 < len(ids) && isUnder(ids[i+1], id) {
			errs.add("/", "Groups and Applications may not have the same identifier.")
			break
		}
	}
	for _, id := range ids {
		if n := t.apps[id].Instances; lim.maxInstances > 0 && n > lim.maxInstances {
			errs.add("/", fmt.Sprintf("app %s: instances: "+fmtTooMany, id, n, lim.maxInstances))
		}
	}
	if len(errs) > 0 {
		return &ValidationError{Details: errs}
	}
	return nil
}

// CreateGroup is POST /v2/groups: the group u.ID must not exist yet. in
// is the group the change is made in, which group_change_success names
// (Marathon's: the parent of the URL's group).
func (m *Master) CreateGroup(u groupUpdate, in string, force bool) (_ GroupChange, err error) {
	defer m.writeLocked()(&err)
	t := m.targetLocked()
	if _, ok := t.apps[u.ID]; ok {
		return GroupChange{}, &ConflictError{Message: fmt.Sprintf("An app with the path %s already exists.", u.ID)}
	}
	if t.exists(u.ID) {
		return GroupChange{}, &ConflictError{Message: fmt.Sprintf("Group %s is already created. Use PUT to change this group.", u.ID)}
	}
	if u.Version != nil {
		// A rollback of a group that is not there (as Marathon's, which
		// looks for it among the group's versions).
		return GroupChange{}, &UnprocessableError{Message: fmt.Sprintf(msgGroupNotAt, u.ID, jsonTime(u.Version.Truncate(time.Millisecond)).String())}
	}
	now := m.changeTimeLocked()
	t.apply(u, now)
	t.touchUp(u.ID, now)
	return m.deployGroupLocked(in, t, now, force, false)
}

// UpdateGroup is PUT /v2/groups/{id}: a version rolls the group back to
// what it held then (groupversions.go); scaleBy scales every app below
// the group; otherwise the group becomes what u says (created if missing).
// With dryRun nothing changes and the answer is the plan.
func (m *Master) UpdateGroup(u groupUpdate, in string, force, dryRun bool) (_ GroupChange, err error) {
	defer m.writeLocked()(&err)
	t := m.targetLocked()
	if _, ok := t.apps[u.ID]; ok {
		return GroupChange{}, &ConflictError{Message: fmt.Sprintf("An app with the path %s already exists.", u.ID)}
	}
	now := m.changeTimeLocked()
	switch {
	case u.Version != nil:
		apps, groups, err := m.groupAtLocked(u.ID, *u.Version)
		if err != nil {
			return GroupChange{}, err
		}
		t.rollBack(u.ID, apps, groups, now)
	case u.ScaleBy != nil:
		if !t.exists(u.ID) {
			return GroupChange{}, groupNotFound(u.ID)
		}
		t.scale(u.ID, *u.ScaleBy)
	default:
		t.apply(u, now)
	}
	t.touchUp(u.ID, now)
	return m.deployGroupLocked(in, t, now, force, dryRun)
}

// DeleteGroup is DELETE /v2/groups/{id}: the group goes, with every app
// and group below it, in one deployment. The root group stays, emptied.
func (m *Master) DeleteGroup(id string, force bool) (_ GroupChange, err error) {
	defer m.writeLocked()(&err)
	t := m.targetLocked()
	if !t.exists(id) {
		return GroupChange{}, groupNotFound(id)
	}
	now := m.changeTimeLocked()
	t.removeBelow(id)
	if id == rootGroupID {
		t.touch(rootGroupID, now)
	} else {
		t.touchUp(parentOf(id), now)
	}
	return m.deployGroupLocked(parentOf(id), t, now, force, false)
}

// changeTimeLocked is the version of a group change, its apps' and its
// groups' alike (as Marathon gives one change one version): now, to the
// millisecond the API shows, and after every app's current version, so
// that it names one definition of each (versionTimeLocked's rule).
func (m *Master) changeTimeLocked() time.Time {
	now := m.cfg.Now().UTC().Truncate(time.Millisecond)
	for _, a := range m.state.Apps {
		if !now.After(a.Version) {
			now = a.Version.Truncate(time.Millisecond).Add(time.Millisecond)
		}
	}
	return now
}

func groupNotFound(id string) error {
	return &NotFoundError{Message: fmt.Sprintf("Group '%s' does not exist", id)}
}

// deployGroupLocked commits the change from the working state to t, made
// under group path, with one deployment. Apps a running deployment holds
// are refused (409) unless force cancels those deployments.
func (m *Master) deployGroupLocked(path string, t groupTarget, now time.Time, force, dryRun bool) (GroupChange, error) {
	if err := t.check(m.appLimits()); err != nil {
		return GroupChange{}, err
	}
	steps, affected, err := planSteps(m.state.Apps, t.apps, t.groups)
	if err != nil {
		return GroupChange{}, err
	}
	if dryRun {
		return GroupChange{Steps: steps}, nil
	}
	var locks []string
	for _, id := range affected {
		locks = append(locks, m.deploymentsOfLocked(id)...)
	}
	slices.Sort(locks)
	if locks = slices.Compact(locks); len(locks) > 0 {
		if !force {
			return GroupChange{}, &LockedError{Deployments: locks}
		}
		for _, id := range locks {
			if err := m.commitLocked(events.DeleteDeployment(id)); err != nil {
				return GroupChange{}, fmt.Errorf("cancel deployment %s: %w", id, err)
			}
		}
	}
	var changes []events.Change
	var originals []events.App
	ports := m.servicePortsLocked()
	for _, id := range affected {
		old, existed := m.state.Apps[id]
		if existed {
			originals = append(originals, old)
		}
		app, stays := t.apps[id]
		m.runtime.deployFailures[id] = 0
		if !stays {
			m.runtime.resetBackoff(id)
			// Marathon forgets an app's versions with it (as deployLocked);
			// group versions may keep some.
			for _, v := range m.state.AppVersions[id] {
				changes = append(changes, m.forgetAppVersionLocked(id, v.Version)...)
			}
			changes = append(changes, events.DeleteApp(id))
			continue
		}
		at := now // changeTimeLocked: after every app's current version
		app.Version = at
		switch {
		case existed && scalingOnly(old, app):
			app.VersionInfo = events.VersionInfo{LastScalingAt: at, LastConfigChangeAt: old.VersionInfo.LastConfigChangeAt}
		default:
			app.VersionInfo = events.VersionInfo{LastScalingAt: at, LastConfigChangeAt: at}
			m.runtime.resetBackoff(id)
		}
		if err := m.assignPortsLocked(&app); err != nil {
			m.runtime.servicePorts = nil // counted anew: some apps here were counted, none committed
			return GroupChange{}, err
		}
		// Counted now, so the next app of this change cannot take its ports.
		ports.Set(app)
		changes = append(changes, events.PutApp(app))
		changes = append(changes, m.versionChangesLocked(app)...) // every change is a version (versions.go)
	}
	versions := make(map[string]time.Time, len(t.apps))
	for id, a := range t.apps {
		versions[id] = a.Version
	}
	for _, id := range affected {
		if _, stays := t.apps[id]; stays {
			versions[id] = now
		}
	}
	changes = append(changes, m.groupVersionChangesLocked(versions, t.groups, now)...)
	var originalGroups []events.Group
	for _, id := range slices.Sorted(maps.Keys(t.groups)) {
		if old, ok := m.state.Groups[id]; !ok || !reflect.DeepEqual(old, t.groups[id]) {
			changes = append(changes, events.PutGroup(t.groups[id]))
			if ok {
				originalGroups = append(originalGroups, old)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(m.state.Groups)) {
		if _, ok := t.groups[id]; !ok {
			changes = append(changes, events.DeleteGroup(id))
			originalGroups = append(originalGroups, m.state.Groups[id])
		}
	}
	dep := events.Deployment{
		ID: uuid.NewString(), Version: now, AffectedApps: nonNil(affected),
		Steps: nonNil(steps), TotalSteps: len(steps), Group: path, Originals: originals,
		OriginalGroups: originalGroups,
	}
	if len(steps) > 0 {
		dep.CurrentStep = 1
		dep.CurrentActions = slices.Clone(steps[0].Actions)
	}
	changes = append(changes, events.PutDeployment(dep))
	if len(steps) == 0 {
		// Nothing to carry out: it is done as soon as it starts.
		changes = append(changes, events.DeleteDeployment(dep.ID))
	}
	err = m.commitLocked(changes...)
	m.runtime.groupAppRefs = nil // group versions changed
	if err != nil {
		m.runtime.servicePorts = nil
		return GroupChange{}, fmt.Errorf("change group %s: %w", path, err)
	}
	m.kickReconcile()
	return GroupChange{Deployment: dep, Steps: steps}, nil
}

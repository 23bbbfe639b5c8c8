package master

import (
	"fmt"
	"time"

	"github.com/atollhq/atoll/events"
)

// App versions, as Marathon keeps them: every change to an app (scaling
// and restarts included) is a version, a timestamp that names one
// definition. The master keeps the last MaxAppVersions definitions of
// each app in its state (events.State.AppVersions), stored with the
// change itself, for GET /v2/apps/{id}/versions and for rollback
// (PUT {"version": V}).

// DefaultMaxAppVersions is Config.MaxAppVersions's default: Marathon's
// --zk_max_versions default.
const DefaultMaxAppVersions = 50

// versionTimeLocked is the version a change to app id made now gets.
// Versions are shown to the millisecond and each must name one
// definition, so a change within the millisecond of the app's current
// version gets the next millisecond.
func (m *Master) versionTimeLocked(id string) time.Time {
	now := m.cfg.Now().UTC().Truncate(time.Millisecond)
	if a, ok := m.state.Apps[id]; ok && !now.After(a.Version) {
		now = a.Version.Truncate(time.Millisecond).Add(time.Millisecond)
	}
	return now
}

// versionChangesLocked keeps app (a new definition) in its history and
// forgets the oldest definitions beyond the limit.
func (m *Master) versionChangesLocked(app events.App) []events.Change {
	h := events.WithVersion(m.state.AppVersions[app.ID], app)
	changes := []events.Change{events.PutAppVersion(app)}
	for i := 0; i < len(h)-m.cfg.MaxAppVersions; i++ {
		changes = append(changes, m.forgetAppVersionLocked(app.ID, h[i].Version)...)
	}
	return changes
}

// RollbackApp deploys the definition app id had at version (Marathon's
// PUT /v2/apps/{id} {"version": V}) as its next version. Only an existing
// app can roll back (Marathon forgets an app's versions with it).
func (m *Master) RollbackApp(id string, version time.Time, force bool, origin *events.Origin) (Change, error) {
	return m.UpdateAppFor(id, func(existing *events.App) (events.App, error) {
		return m.rollbackTargetLocked(id, existing, version) // UpdateApp holds the lock
	}, force, origin)
}

// rollbackTargetLocked is the definition a rollback of app id (existing,
// nil if there is none) to version deploys: only an existing app rolls
// back, to a version it keeps.
func (m *Master) rollbackTargetLocked(id string, existing *events.App, version time.Time) (events.App, error) {
	if existing == nil {
		return events.App{}, appNotFound(id)
	}
	a, ok := versionIn(m.state.AppVersions[id], version)
	if !ok {
		return events.App{}, versionNotFound(id, jsonTime(version).String())
	}
	return a, nil
}

// versionNotFound is Marathon's 404 for a version an app does not keep.
func versionNotFound(id, version string) error {
	return &NotFoundError{Message: fmt.Sprintf("App '%s' does not exist in version %s", id, version)}
}

// versionIn finds a definition in a history by version, to the
// millisecond.
func versionIn(h []events.App, version time.Time) (events.App, bool) {
	want := version.Truncate(time.Millisecond)
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Version.Truncate(time.Millisecond).Equal(want) {
			return h[i], true
		}
	}
	return events.App{}, false
}

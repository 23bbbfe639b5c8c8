package master

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/atollhq/atoll/events"
)

// Bulk app changes, as Marathon's AppsResource.replaceMultiple and
// patchMultiple take them: PUT or PATCH /v2/apps with an array of app
// updates, each naming its app by "id", all carried out in one
// deployment (ordered by dependencies as a group change is). PUT creates
// the apps that do not exist and is partial unless ?partialUpdate=false;
// PATCH is always partial and creates nothing. An item may be a rollback
// ({"id", "version"}). One bad item refuses the whole call, and nothing
// changes.

// bulkItem is one app update of the array.
type bulkItem struct {
	index     int // in the array
	id, rawID string
	body      []byte
}

// decodeBulk splits the array into its items; each must be an object
// with an "id". The items' own errors (422) come back with the items that
// had none, so that the call reports every bad item at once.
func decodeBulk(body []byte) ([]bulkItem, fieldErrs, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, nil, &InvalidJSONError{Message: msgInvalidJSON,
			Details: []FieldErrors{{Path: "/", Errors: []string{errExpArray}}}}
	}
	var errs fieldErrs
	items := make([]bulkItem, 0, len(raws))
	seen := map[string]int{}
	for i, raw := range raws {
		path := fmt.Sprintf("/(%d)", i)
		var head struct {
			ID *string `json:"id"`
		}
		if err := json.Unmarshal(raw, &head); err != nil || head.ID == nil {
			errs.add(path+"/id", "must be given: each item of a bulk update names its app")
			continue
		}
		id, idErrs := normalizeAppID(*head.ID)
		if len(idErrs) > 0 {
			errs.add(path+"/id", idErrs...)
			continue
		}
		if j, dup := seen[id]; dup {
			errs.add(path+"/id", fmt.Sprintf("names the same app as item %d", j))
			continue
		}
		seen[id] = i
		items = append(items, bulkItem{index: i, id: id, rawID: *head.ID, body: raw})
	}
	return items, errs, nil
}

// UpdateApps changes several apps in one deployment (see above).
func (m *Master) UpdateApps(items []bulkItem, errs fieldErrs, partial, create, force bool) (_ GroupChange, err error) {
	defer m.writeLocked()(&err)
	t := m.targetLocked()
	for _, it := range items {
		var existing *events.App
		if a, ok := t.apps[it.id]; ok {
			existing = &a
		}
		app, err := m.bulkAppLocked(it, existing, partial, create)
		if err != nil {
			if !prefixErrors(&errs, fmt.Sprintf("/(%d)", it.index), err) {
				return GroupChange{}, err
			}
			continue
		}
		t.apps[it.id] = app
	}
	if len(errs) > 0 {
		return GroupChange{}, &ValidationError{Details: errs}
	}
	return m.deployGroupLocked(rootGroupID, t, m.changeTimeLocked(), force, false)
}

// bulkAppLocked is one item's app after the update.
func (m *Master) bulkAppLocked(it bulkItem, existing *events.App, partial, create bool) (events.App, error) {
	if version, ok, err := rollbackOf(it.body); ok {
		if err != nil {
			return events.App{}, err
		}
		return m.rollbackTargetLocked(it.id, existing, version)
	}
	if existing == nil && !create {
		return events.App{}, appNotFound(it.id)
	}
	return appForUpdate(it.rawID, existing, it.body, partial, m.appLimits())
}

// prefixErrors adds a validation error's details under prefix and says
// whether it was one.
func prefixErrors(errs *fieldErrs, prefix string, err error) bool {
	var v *ValidationError
	var bad *InvalidJSONError
	switch {
	case asError(err, &v):
		for _, d := range v.Details {
			errs.add(prefix+strings.TrimSuffix(d.Path, "/"), d.Errors...)
		}
		return true
	case asError(err, &bad):
		for _, d := range bad.Details {
			errs.add(prefix+strings.TrimSuffix(d.Path, "/"), d.Errors...)
		}
		return true
	}
	return false
}

// putApps is PUT (create, partial unless ?partialUpdate=false) or PATCH
// (partial, no creation) /v2/apps.
func (m *Master) putApps(w http.ResponseWriter, r *http.Request, patch bool) {
	body, err := readBody(w, r)
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	items, itemErrs, err := decodeBulk(body)
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	partial := patch || boolParam(r, "partialUpdate", true)
	ch, err := m.UpdateApps(items, itemErrs, partial, !patch, boolParam(r, "force", false))
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	writeDeployment(w, http.StatusOK, Change{Deployment: ch.Deployment})
}

// KillTasksScaled kills the named tasks of several apps and shrinks each
// app by as many instances, in one deployment, as Marathon's
// POST /v2/tasks/delete?scale=true does.
func (m *Master) KillTasksScaled(byApp map[string][]string, force bool) (_ GroupChange, err error) {
	defer m.writeLocked()(&err)
	t := m.targetLocked()
	var kill []string
	for appID, ids := range byApp {
		app, ok := t.apps[appID]
		if !ok {
			return GroupChange{}, appNotFound(appID)
		}
		for _, id := range ids {
			if task, ok := m.state.Tasks[id]; !ok || task.AppID != appID {
				return GroupChange{}, &NotFoundError{Message: fmt.Sprintf("Task '%s' does not exist", id)}
			}
		}
		app.Instances = max(0, app.Instances-len(ids))
		t.apps[appID] = app
		kill = append(kill, ids...)
	}
	ch, err := m.deployGroupLocked(rootGroupID, t, m.changeTimeLocked(), force, false)
	if err != nil {
		return GroupChange{}, err
	}
	now := m.cfg.Now()
	for _, id := range kill {
		// The named tasks go, not the ones the scheduler would pick.
		m.markKillingLocked(id, now)
	}
	m.kickReconcile()
	return ch, nil
}

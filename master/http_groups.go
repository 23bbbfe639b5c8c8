package master

import (
	"errors"
	"net/http"
	"strings"

	"github.com/atollhq/atoll/events"
)

// /v2/groups: the group tree, read from the read view, and changes to a
// whole group in one deployment (groups.go). Who may use it: whoever may
// use /v2/apps (the API's guard, http_guard.go), as in Marathon.

// splitGroupPath takes apart what follows /v2/groups: "/a/b", "/a/b/versions"
// or "/versions" (the root's). Group ids never end in "versions"
// (normalizeAppID refuses it), so the split is unambiguous.
func splitGroupPath(rest string) (id string, versions bool) {
	rest = strings.Trim(rest, "/")
	if rest == "versions" {
		return rootGroupID, true
	}
	if r, ok := strings.CutSuffix(rest, "/versions"); ok {
		rest, versions = r, true
	}
	return resolvePath(rootGroupID, rest), versions
}

// serveGroups routes /v2/groups and /v2/groups/{id...}[/versions].
func (m *Master) serveGroups(w http.ResponseWriter, r *http.Request) {
	id, versions := splitGroupPath(strings.TrimPrefix(r.URL.Path, "/v2/groups"))
	force := boolParam(r, "force", false)
	if versions {
		methods{"GET": func(w http.ResponseWriter, r *http.Request) { m.getGroupVersions(w, r, id) }}.ServeHTTP(w, r)
		return
	}
	methods{
		"GET":    func(w http.ResponseWriter, r *http.Request) { m.getGroup(w, r, id) },
		"POST":   func(w http.ResponseWriter, r *http.Request) { m.postGroup(w, r, id, force) },
		"PUT":    func(w http.ResponseWriter, r *http.Request) { m.putGroup(w, r, id, force) },
		"DELETE": func(w http.ResponseWriter, r *http.Request) { m.deleteGroup(w, r, id, force) },
	}.ServeHTTP(w, r)
}

// getGroup is GET /v2/groups[/{id}]: Marathon's GroupInfo with what
// ?embed= asks for.
func (m *Master) getGroup(w http.ResponseWriter, r *http.Request, id string) {
	n, ok := groupTree(m.reads.load())[id]
	if !ok {
		m.writeError(w, r, groupNotFound(id))
		return
	}
	embed := groupEmbedOf(r.URL.Query()["embed"], m.cfg.Now())
	size, err := n.encode(embed)
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	out := startJSON(w, http.StatusOK, size)
	n.write(out, embed)
	out.end()
}

// getGroupVersions is GET /v2/groups[/{id}]/versions: a bare array of
// timestamps, newest first.
func (m *Master) getGroupVersions(w http.ResponseWriter, r *http.Request, id string) {
	n, ok := groupTree(m.reads.load())[id]
	if !ok {
		m.writeError(w, r, groupNotFound(id))
		return
	}
	writeJSON(w, http.StatusOK, n.versions())
}

// postGroup is POST /v2/groups[/{id}]: 201 with the deployment that
// creates the group.
func (m *Master) postGroup(w http.ResponseWriter, r *http.Request, path string, force bool) {
	body, err := readBody(w, r)
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	u, err := decodeGroupBody(body, path, m.appLimits())
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	ch, err := m.CreateGroup(u, parentOf(path), force)
	if err != nil {
		m.groupFailed(parentOf(path), err)
		m.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v2/groups"+strings.TrimSuffix(u.ID, "/"))
	writeDeployment(w, http.StatusCreated, Change{Deployment: ch.Deployment})
}

// putGroup is PUT /v2/groups[/{id}]: the group becomes the body's
// definition (or, with scaleBy, every app below it scales); ?dryRun=true
// answers the plan and changes nothing.
func (m *Master) putGroup(w http.ResponseWriter, r *http.Request, path string, force bool) {
	body, err := readBody(w, r)
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	u, err := decodeGroupBody(body, path, m.appLimits())
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	dryRun := boolParam(r, "dryRun", false)
	ch, err := m.UpdateGroup(u, parentOf(path), force, dryRun)
	if err != nil {
		if !dryRun {
			m.groupFailed(parentOf(path), err)
		}
		m.writeError(w, r, err)
		return
	}
	if dryRun {
		writeJSON(w, http.StatusOK, struct {
			Steps []stepView `json:"steps"`
		}{stepViews(ch.Steps)})
		return
	}
	writeDeployment(w, http.StatusOK, Change{Deployment: ch.Deployment})
}

// deleteGroup is DELETE /v2/groups[/{id}]: the group and all below it go.
func (m *Master) deleteGroup(w http.ResponseWriter, r *http.Request, id string, force bool) {
	ch, err := m.DeleteGroup(id, force)
	if err != nil {
		m.groupFailed(parentOf(id), err)
		m.writeError(w, r, err)
		return
	}
	writeDeployment(w, http.StatusOK, Change{Deployment: ch.Deployment})
}

func stepViews(steps []events.DeploymentStep) []stepView {
	out := make([]stepView, len(steps))
	for i, s := range steps {
		acts := make([]actionView, len(s.Actions))
		for j, a := range s.Actions {
			acts[j] = actionView{Action: a.Action, App: a.App}
		}
		out[i] = stepView{Actions: acts}
	}
	return out
}

// groupFailed tells /v2/events that a group change was refused where
// Marathon's GroupManager refuses it (a lock, an invalid tree), as its
// group_change_failed. It is a notice: nothing changed, so nothing is
// replayed. id is the group the change was made in: as Marathon's
// GroupsResource passes updateRoot the parent of the URL's group.
func (m *Master) groupFailed(id string, err error) {
	var (
		locked  *LockedError
		invalid *ValidationError
	)
	if !errors.As(err, &locked) && !errors.As(err, &invalid) {
		return
	}
	now := m.cfg.Now()
	m.sse.notice([]sseFrame{frame("", "group_change_failed", groupChangeEvent{
		GroupID: id, Version: jsonTime(now), Reason: err.Error(),
		EventType: "group_change_failed", Timestamp: jsonTime(now),
	})})
}

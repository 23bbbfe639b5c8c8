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

// What a path below /v2/groups names (groupPath.kind).
const (
	pathGroup     = iota // the group: /v2/groups/{id}
	pathVersions         // its versions: .../versions
	pathAtVersion        // the group as it was: .../versions/{v}
	pathApps             // the apps below it: .../apps
)

// groupPath is what a path below /v2/groups names.
type groupPath struct {
	id      string
	kind    int
	version string // pathAtVersion's, as given
}

// splitGroupPath takes apart what follows /v2/groups. A GET is read as
// Marathon's GroupsResource.group matches its regexes, in its order:
// "…/apps" (or "apps") is the apps below the group, "…/versions" (or
// "versions") its versions, "…/versions/{v}" (or "versions/{v}", the
// last "/versions/" deciding) the group as it was at v; anything else is
// a group id. So a group named "apps" cannot be read by GET, nor one with
// a "versions" segment followed by more, as in Marathon; other methods
// take the whole path as the group's id, as Marathon's do.
func splitGroupPath(method, rest string) groupPath {
	rest = strings.Trim(rest, "/")
	group := func(p string) string { return resolvePath(rootGroupID, p) }
	if method != http.MethodGet && method != http.MethodHead {
		return groupPath{id: group(rest)}
	}
	switch {
	case rest == "apps":
		return groupPath{id: rootGroupID, kind: pathApps}
	case strings.HasSuffix(rest, "/apps") && len(rest) > len("/apps"):
		return groupPath{id: group(strings.TrimSuffix(rest, "/apps")), kind: pathApps}
	case rest == "versions":
		return groupPath{id: rootGroupID, kind: pathVersions}
	case strings.HasSuffix(rest, "/versions") && len(rest) > len("/versions"):
		return groupPath{id: group(strings.TrimSuffix(rest, "/versions")), kind: pathVersions}
	}
	if i := strings.LastIndex(rest, "/versions/"); i > 0 {
		return groupPath{id: group(rest[:i]), kind: pathAtVersion, version: rest[i+len("/versions/"):]}
	}
	if v, ok := strings.CutPrefix(rest, "versions/"); ok {
		return groupPath{id: rootGroupID, kind: pathAtVersion, version: v}
	}
	return groupPath{id: group(rest)}
}

// serveGroups routes /v2/groups and /v2/groups/{id...}[/versions[/{v}]|/apps].
func (m *Master) serveGroups(w http.ResponseWriter, r *http.Request) {
	p := splitGroupPath(r.Method, strings.TrimPrefix(r.URL.Path, "/v2/groups"))
	id := p.id
	switch p.kind {
	case pathVersions:
		methods{"GET": func(w http.ResponseWriter, r *http.Request) { m.getGroupVersions(w, r, id) }}.ServeHTTP(w, r)
		return
	case pathAtVersion:
		methods{"GET": func(w http.ResponseWriter, r *http.Request) { m.getGroupAt(w, r, id, p.version) }}.ServeHTTP(w, r)
		return
	case pathApps:
		methods{"GET": func(w http.ResponseWriter, r *http.Request) { m.getGroupApps(w, r, id) }}.ServeHTTP(w, r)
		return
	}
	force := boolParam(r, "force", false)
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
	m.writeGroup(w, r, n, groupEmbedOf(r.URL.Query()["embed"], m.cfg.Now()))
}

// writeGroup answers with group n as embed shows it.
func (m *Master) writeGroup(w http.ResponseWriter, r *http.Request, n *groupNode, embed groupEmbed) {
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

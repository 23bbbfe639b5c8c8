package master

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/atollhq/atoll/events"
)

// /v2/apps: list, create, show, update, delete and restart apps.

// appView is an app as Marathon's API shows it: the definition plus task
// counts, the deployments that hold it and, when asked for, its tasks.
// Waiting is atoll's: why the app's deployment cannot progress (Marathon
// tells only through /v2/queue).
type appView struct {
	appDefView // appdef_output_gen.go

	TasksStaged    int             `json:"tasksStaged"`
	TasksRunning   int             `json:"tasksRunning"`
	TasksHealthy   int             `json:"tasksHealthy"`
	TasksUnhealthy int             `json:"tasksUnhealthy"`
	Deployments    []deploymentRef `json:"deployments"`
	Waiting        []string        `json:"waiting"`
	// Tasks is nil unless embedded; then an array, even when empty.
	Tasks *[]taskView `json:"tasks,omitempty"`
}

type versionInfoView struct {
	LastScalingAt      jsonTime `json:"lastScalingAt"`
	LastConfigChangeAt jsonTime `json:"lastConfigChangeAt"`
}

// deploymentsByApp is the state's deployments, in id order, by the apps
// they affect: one pass over them for a listing, not one per app.
func deploymentsByApp(s *events.State) map[string][]events.Deployment {
	out := map[string][]events.Deployment{}
	for _, d := range sortedDeployments(s) {
		for _, id := range d.AffectedApps {
			if l := out[id]; len(l) == 0 || l[len(l)-1].ID != d.ID {
				out[id] = append(l, d)
			}
		}
	}
	return out
}

// appViewOf is the app as the API shows it; deps is deploymentsByApp(s).
func appViewOf(s *events.State, a events.App, withTasks bool, deps map[string][]events.Deployment) appView {
	var tasks []events.Task
	if withTasks {
		tasks = s.TasksOf(a.ID)
	}
	return appViewFrom(a, s.CountsOf(a.ID), deps[a.ID], tasks, withTasks)
}

// appViewFrom is the app as the API shows it, given its task counts, the
// deployments naming it (oldest first) and, withTasks, its tasks by id.
func appViewFrom(a events.App, c events.TaskCounts, deps []events.Deployment, tasks []events.Task, withTasks bool) appView {
	return appViewOfApp(&a, c, deps, tasks, withTasks)
}

// appViewOfApp is appViewFrom for an app on the heap already (the view's
// fields are shown through the schema's functions, which a would escape
// to: appDefinitionOf).
func appViewOfApp(a *events.App, c events.TaskCounts, deps []events.Deployment, tasks []events.Task, withTasks bool) appView {
	v := appView{
		appDefView:  appDefViewOf(a),
		Deployments: []deploymentRef{},
		Waiting:     []string{},
	}
	v.TasksStaged, v.TasksRunning = c.Staged, c.Running
	// Health counts only mean something when the app checks health.
	if len(a.HealthChecks) > 0 {
		v.TasksHealthy, v.TasksUnhealthy = c.Healthy, c.Unhealthy
	}
	for _, d := range deps {
		v.Deployments = append(v.Deployments, deploymentRef{ID: d.ID})
		for _, act := range d.CurrentActions {
			if act.App == a.ID && act.Waiting != "" {
				v.Waiting = append(v.Waiting, act.Waiting)
			}
		}
	}
	if withTasks {
		views := taskViews(tasks)
		v.Tasks = &views
	}
	return v
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// listApps is GET /v2/apps with Marathon's filters: id and cmd
// (case-insensitive substrings) and a label selector. It is served from
// the read view, without the state's lock.
func (m *Master) listApps(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	match, err := parseLabelSelector(q.Get("label"))
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	}
	idPart, cmdPart := strings.ToLower(q.Get("id")), strings.ToLower(q.Get("cmd"))
	emb := parseAppEmbeds(r, appEmbeds{})
	var picked []*appEntry
	for _, e := range m.reads.load().apps {
		if e.app == nil {
			continue
		}
		if idPart != "" && !strings.Contains(e.lowerID, idPart) {
			continue
		}
		if cmdPart != "" && !strings.Contains(e.lowerCmd, cmdPart) {
			continue
		}
		if !match(e.app.Labels) {
			continue
		}
		picked = append(picked, e)
	}
	m.writeApps(w, r, picked, emb, `{"apps":[`, `]}`)
}

// writeApps answers with apps as a JSON list between open and close (GET
// /v2/apps's object, a group's bare array), each with the embeds asked for.
func (m *Master) writeApps(w http.ResponseWriter, r *http.Request, apps []*appEntry, emb appEmbeds, open, close string) {
	now := m.cfg.Now()
	extras := make([][]byte, len(apps))
	size := len(open) + len(close)
	for i, e := range apps {
		// Encoded before the answer starts: an app that cannot be is a
		// 500, not half an answer.
		if err := e.encode(emb.tasks); err != nil {
			m.writeError(w, r, err)
			return
		}
		x, err := e.extras(emb, now)
		if err != nil {
			m.writeError(w, r, err)
			return
		}
		extras[i] = x
		if size += len(e.json) + len(x) + 1; emb.tasks {
			size += len(e.tasks.json) + len(`,"tasks":[]`)
		}
	}
	out := startJSON(w, http.StatusOK, size)
	out.WriteString(open)
	for i, e := range apps {
		if i > 0 {
			out.WriteByte(',')
		}
		out.app(e, emb.tasks, extras[i])
	}
	out.WriteString(close)
	out.end()
}

// appLimits are the bounds the API holds app definitions to.
func (m *Master) appLimits() appLimits {
	return appLimits{maxInstances: m.cfg.MaxInstancesPerApp}
}

// postApp is POST /v2/apps: 201 with the new app, which names the
// deployment that starts it.
func (m *Master) postApp(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	app, err := appForCreate(body, m.appLimits())
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	ch, err := m.CreateAppFor(app, originOf(r))
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	// The app as created, with its tasks as the read view has them: the
	// change is durable and published, so the view holds it.
	counts, deps, tasks := events.TaskCounts{}, []events.Deployment(nil), []events.Task(nil)
	if e, ok := m.reads.load().find(ch.App.ID); ok {
		counts, deps, tasks = e.tasks.counts, e.deps, e.tasks.tasks
	}
	v := appViewFrom(ch.App, counts, deps, tasks, true)
	// The deployment may have ended already; the answer names it anyway.
	v.Deployments = []deploymentRef{{ID: ch.Deployment.ID}}
	w.Header().Set("Location", "/v2/apps"+ch.App.ID)
	w.Header().Set(deploymentHeader, ch.Deployment.ID)
	writeJSON(w, http.StatusCreated, v)
}

// Sub-resources of an app, as splitAppPath names them.
const (
	subApp      = ""
	subTasks    = "tasks"
	subTask     = "task"
	subRestart  = "restart"
	subVersions = "versions"
	subVersion  = "version"
)

// splitAppPath takes apart what follows /v2/apps: "/group/app",
// "/group/app/tasks", "/group/app/tasks/<taskId>", "/group/app/restart",
// "/group/app/versions" or "/group/app/versions/<version>" (arg is the
// task id or the version). App ids never end in "tasks", "restart" or
// "versions" (normalizeAppID refuses them), so the split is unambiguous.
func splitAppPath(rest string) (appID, sub, arg string) {
	rest = strings.TrimRight(rest, "/")
	if i := strings.LastIndex(rest, "/tasks/"); i > 0 {
		if t := rest[i+len("/tasks/"):]; t != "" && !strings.Contains(t, "/") {
			return rest[:i], subTask, t
		}
	}
	if i := strings.LastIndex(rest, "/versions/"); i > 0 {
		if v := rest[i+len("/versions/"):]; v != "" && !strings.Contains(v, "/") {
			return rest[:i], subVersion, v
		}
	}
	for _, s := range []string{subTasks, subRestart, subVersions} {
		if strings.HasSuffix(rest, "/"+s) && len(rest) > len(s)+1 {
			return strings.TrimSuffix(rest, "/"+s), s, ""
		}
	}
	return rest, subApp, ""
}

// serveAppPath routes /v2/apps/{id...} and its sub-resources.
func (m *Master) serveAppPath(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/v2/apps")
	if strings.Trim(rest, "/") == "" {
		m.appsRoot().ServeHTTP(w, r)
		return
	}
	rawID, sub, taskID := splitAppPath(rest)
	id, _ := normalizeAppID(rawID) // a bad id names no app: 404 below
	force := boolParam(r, "force", false)
	var h methods
	switch sub {
	case subApp:
		h = methods{
			"GET":   func(w http.ResponseWriter, r *http.Request) { m.getApp(w, r, id) },
			"PUT":   func(w http.ResponseWriter, r *http.Request) { m.putApp(w, r, rawID, id, force) },
			"PATCH": func(w http.ResponseWriter, r *http.Request) { m.patchApp(w, r, rawID, id, force) },
			"DELETE": func(w http.ResponseWriter, r *http.Request) {
				// Marathon's AppsResource.delete: force defaults to true.
				force := boolParam(r, "force", true)
				m.change(w, r, func() (Change, error) { return m.DeleteApp(id, force) })
			},
		}
	case subRestart:
		h = methods{
			"POST": func(w http.ResponseWriter, r *http.Request) {
				m.change(w, r, func() (Change, error) { return m.RestartApp(id, force) })
			},
		}
	case subTasks:
		h = methods{
			"GET":    func(w http.ResponseWriter, r *http.Request) { m.getAppTasks(w, r, id) },
			"DELETE": func(w http.ResponseWriter, r *http.Request) { m.killAppTasks(w, r, id, force) },
		}
	case subTask:
		h = methods{
			"DELETE": func(w http.ResponseWriter, r *http.Request) { m.killAppTask(w, r, id, taskID, force) },
		}
	case subVersions:
		h = methods{"GET": func(w http.ResponseWriter, r *http.Request) { m.getAppVersions(w, r, id) }}
	case subVersion:
		h = methods{"GET": func(w http.ResponseWriter, r *http.Request) { m.getAppVersion(w, r, id, taskID) }}
	}
	h.ServeHTTP(w, r)
}

// getApp is GET /v2/apps/{id}: the app with its tasks and its last task
// failure, as Marathon always embeds them here. It is served from the
// read view.
func (m *Master) getApp(w http.ResponseWriter, r *http.Request, id string) {
	e, ok := m.reads.load().find(id)
	if !ok || e.app == nil {
		m.writeError(w, r, appNotFound(id))
		return
	}
	if err := e.encode(true); err != nil {
		m.writeError(w, r, err)
		return
	}
	x, err := e.extras(parseAppEmbeds(r, appEmbeds{tasks: true, lastTaskFailure: true}), m.cfg.Now())
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	out := startJSON(w, http.StatusOK, len(e.json)+len(e.tasks.json)+len(x)+len(`{"app":,"tasks":[]}`))
	out.WriteString(`{"app":`)
	out.app(e, true, x)
	out.WriteByte('}')
	out.end()
}

// putApp is PUT /v2/apps/{id}: a partial update by default
// (?partialUpdate=false replaces the definition), creating the app when
// it is new (201).
func (m *Master) putApp(w http.ResponseWriter, r *http.Request, rawID, id string, force bool) {
	body, err := readBody(w, r)
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	if m.rolledBack(w, r, body, id, force) {
		return
	}
	partial := boolParam(r, "partialUpdate", true)
	ch, err := m.UpdateAppFor(id, func(existing *events.App) (events.App, error) {
		return appForUpdate(rawID, existing, body, partial, m.appLimits())
	}, force, originOf(r))
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if ch.Created {
		w.Header().Set("Location", "/v2/apps"+ch.App.ID)
		status = http.StatusCreated
	}
	writeDeployment(w, status, ch)
}

// patchApp is PATCH /v2/apps/{id}: always a partial update, and never a
// creation (404 for an app that does not exist), as Marathon's
// AppsResource.patch.
func (m *Master) patchApp(w http.ResponseWriter, r *http.Request, rawID, id string, force bool) {
	body, err := readBody(w, r)
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	if m.rolledBack(w, r, body, id, force) {
		return
	}
	ch, err := m.UpdateAppFor(id, func(existing *events.App) (events.App, error) {
		if existing == nil {
			return events.App{}, appNotFound(id)
		}
		return appForUpdate(rawID, existing, body, true, m.appLimits())
	}, force, originOf(r))
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	writeDeployment(w, http.StatusOK, ch)
}

// change runs an operation that starts a deployment and answers
// {"deploymentId", "version"}.
func (m *Master) change(w http.ResponseWriter, r *http.Request, op func() (Change, error)) {
	ch, err := op()
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	writeDeployment(w, http.StatusOK, ch)
}

// Label selectors, as Marathon's LabelSelectorParsers take them:
// comma-separated terms, all of which must hold.
var (
	selectorSet  = regexp.MustCompile(`^([^\s=!(),]+)\s+(in|notin)\s*\(([^()]*)\)$`)
	selectorKey  = regexp.MustCompile(`^[^\s=!(),]+$`)
	selectorTerm = regexp.MustCompile(`^([^\s=!(),]+)\s*(==|!=)\s*([^\s=!(),]*)$`)
)

// parseLabelSelector returns a matcher for "key", "key==value",
// "key!=value", "key in (a, b)" and "key notin (a, b)" terms.
func parseLabelSelector(sel string) (func(map[string]string) bool, error) {
	var terms []func(map[string]string) bool
	for _, raw := range splitSelector(sel) {
		t := strings.TrimSpace(raw)
		if t == "" {
			continue
		}
		switch {
		case selectorSet.MatchString(t):
			g := selectorSet.FindStringSubmatch(t)
			key, notIn := g[1], g[2] == "notin"
			var values []string
			for _, v := range strings.Split(g[3], ",") {
				values = append(values, strings.TrimSpace(v))
			}
			terms = append(terms, func(l map[string]string) bool {
				v, ok := l[key]
				return ok && slices.Contains(values, v) != notIn
			})
		case selectorTerm.MatchString(t):
			g := selectorTerm.FindStringSubmatch(t)
			key, want, eq := g[1], g[3], g[2] == "=="
			terms = append(terms, func(l map[string]string) bool {
				v, ok := l[key]
				return ok && (v == want) == eq
			})
		case selectorKey.MatchString(t):
			terms = append(terms, func(l map[string]string) bool { _, ok := l[t]; return ok })
		default:
			return nil, fmt.Errorf("Can not parse label selector %s. Reason: bad term %q", sel, t)
		}
	}
	return func(l map[string]string) bool {
		for _, t := range terms {
			if !t(l) {
				return false
			}
		}
		return true
	}, nil
}

// splitSelector splits on commas outside parentheses.
func splitSelector(sel string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range sel {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, sel[start:i])
				start = i + 1
			}
		}
	}
	return append(out, sel[start:])
}

// sortedDeployments returns the deployments oldest first.
func sortedDeployments(s *events.State) []events.Deployment {
	out := make([]events.Deployment, 0, len(s.Deployments))
	for _, d := range s.Deployments {
		out = append(out, d)
	}
	sortDeployments(out)
	return out
}

// sortDeployments sorts deployments oldest first.
func sortDeployments(out []events.Deployment) {
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Version.Equal(out[j].Version) {
			return out[i].Version.Before(out[j].Version)
		}
		return out[i].ID < out[j].ID
	})
}

// killSelectionOf is the app's killSelection as Marathon shows it: its
// default spelled out.
func killSelectionOf(a events.App) string {
	if a.KillSelection == "" {
		return events.KillYoungestFirst
	}
	return a.KillSelection
}

// originOf is who made an API call, as Marathon's api_post_event names
// them: the client's address (the connection's, as Marathon's
// getRemoteAddr; a proxy in front shows as itself) and the path called.
func originOf(r *http.Request) *events.Origin {
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	return &events.Origin{ClientIP: ip, URI: r.URL.Path}
}

// appsRoot serves /v2/apps itself: list, create, and the bulk updates.
func (m *Master) appsRoot() methods {
	return methods{"GET": m.listApps, "POST": m.postApp,
		"PUT":   func(w http.ResponseWriter, r *http.Request) { m.putApps(w, r, false) },
		"PATCH": func(w http.ResponseWriter, r *http.Request) { m.putApps(w, r, true) },
	}
}

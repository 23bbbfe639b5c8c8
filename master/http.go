package master

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"time"
)

// The Marathon v2-compatible HTTP API (and Mesos's /master/state), so that
// tools written for Marathon and Mesos work unchanged. Routes are in this
// file; each group of endpoints has its own http_*.go file.

// maxBody bounds request bodies: an app definition is a few KB.
const maxBody = 1 << 20

// Handler serves the API behind its door (http_guard.go): credentials when
// configured, same-origin JSON for changes. On a standby most calls go to
// the leader instead (see standby.go), which checks them again.
func (m *Master) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v2/apps", m.appsRoot())
	// App ids contain slashes: /v2/apps/{id...}[/tasks[/{taskId}]|/restart]
	// is taken apart by serveAppPath.
	mux.HandleFunc("/v2/apps/", m.serveAppPath)
	mux.HandleFunc("/v2/groups", m.serveGroups) // http_groups.go
	mux.HandleFunc("/v2/groups/", m.serveGroups)
	mux.Handle("/v2/tasks", methods{"GET": m.listTasks})
	mux.Handle("/v2/tasks/delete", methods{"POST": m.deleteTasks})
	mux.HandleFunc("GET /v2/tasks/{taskId}/files/read", m.readTaskFile) // http_files.go
	mux.Handle("/v2/deployments", methods{"GET": m.listDeployments})
	mux.HandleFunc("/v2/deployments/", m.serveDeploymentPath)
	mux.Handle("/v2/queue", methods{"GET": m.getQueue})
	mux.HandleFunc("/v2/queue/", m.serveQueuePath)
	mux.Handle("/v2/info", methods{"GET": m.getInfo})
	mux.Handle("/v2/events", methods{"GET": m.getEvents})
	mux.Handle("/v2/leader", methods{"GET": m.getLeader, "DELETE": m.deleteLeader})
	mux.Handle("/ping", methods{"GET": ping})
	state := methods{"GET": m.getMesosState}
	mux.Handle("/master/state", state)
	mux.Handle("/master/state.json", state)
	mux.Handle("/state.json", state)
	mux.Handle("/master/health", methods{"GET": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }})
	mux.Handle("/metrics", m.metrics.handler())
	registerUI(mux) // the web UI at /ui/ (http_ui.go)
	if m.cfg.Profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	}
	mux.Handle("/api/v1", methods{"POST": m.postOperatorCall})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeMessage(w, http.StatusNotFound, "URI not found: "+r.URL.Path)
	})
	return m.guard.wrap(m.withStandby(mux))
}

// methods dispatches on the request method and answers others with
// Marathon's JSON 405 (ServeMux's own 405 is plain text).
type methods map[string]http.HandlerFunc

func (ms methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := ms[r.Method]
	if !ok && r.Method == http.MethodHead {
		h, ok = ms[http.MethodGet]
	}
	if !ok {
		allowed := make([]string, 0, len(ms))
		for m := range ms {
			allowed = append(allowed, m)
		}
		sort.Strings(allowed)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeMessage(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	h(w, r)
}

func ping(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
	_, _ = io.WriteString(w, "pong\n")
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data, _ = json.Marshal(message{Message: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

type message struct {
	Message string `json:"message"`
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, message{Message: msg})
}

type deploymentRef struct {
	ID string `json:"id"`
}

// writeError maps the core's and the parser's errors onto Marathon's
// status codes and bodies.
func (m *Master) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		badJSON  *InvalidJSONError
		notFound *NotFoundError
		conflict *ConflictError
		locked   *LockedError
		invalid  *ValidationError
		refused  *UnprocessableError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &badJSON):
		writeJSON(w, http.StatusBadRequest, struct {
			Message string        `json:"message"`
			Details []FieldErrors `json:"details"`
		}{badJSON.Message, badJSON.Details})
	case errors.As(err, &invalid):
		writeJSON(w, http.StatusUnprocessableEntity, struct {
			Message string        `json:"message"`
			Details []FieldErrors `json:"details"`
		}{"Object is not valid", invalid.Details})
	case errors.As(err, &refused):
		writeMessage(w, http.StatusUnprocessableEntity, refused.Message)
	case errors.As(err, &notFound):
		writeMessage(w, http.StatusNotFound, notFound.Message)
	case errors.As(err, &locked):
		refs := make([]deploymentRef, len(locked.Deployments))
		for i, id := range locked.Deployments {
			refs[i] = deploymentRef{ID: id}
		}
		writeJSON(w, http.StatusConflict, struct {
			Message     string          `json:"message"`
			Deployments []deploymentRef `json:"deployments"`
		}{locked.Error(), refs})
	case errors.As(err, &conflict):
		writeMessage(w, http.StatusConflict, conflict.Message)
	case errors.Is(err, ErrNotLeader):
		writeMessage(w, http.StatusServiceUnavailable, "this master is not the leader; try again at the leader (see /v2/leader)")
	case errors.As(err, &tooLarge):
		writeMessage(w, http.StatusRequestEntityTooLarge, "request body is larger than 1 MiB")
	default:
		m.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeMessage(w, http.StatusInternalServerError, err.Error())
	}
}

// readBody reads a bounded request body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
}

// boolParam reads ?name=true|false (Marathon's default when absent).
func boolParam(r *http.Request, name string, def bool) bool {
	switch strings.ToLower(r.URL.Query().Get(name)) {
	case "true", "1":
		return true
	case "false", "0":
		return false
	}
	return def
}

// jsonTime prints times as Marathon does: UTC with milliseconds,
// "2026-11-23T17:34:21.123Z". time.Time's own encoding has nanoseconds
// and the local offset.
type jsonTime time.Time

const marathonTimeLayout = "2006-01-02T15:04:05.000Z"

// MarshalText rather than MarshalJSON: encoding/json checks and compacts
// what a MarshalJSON returns, which was half the cost of encoding a task.
func (t jsonTime) MarshalText() ([]byte, error) {
	return time.Time(t).UTC().AppendFormat(make([]byte, 0, len(marathonTimeLayout)), marathonTimeLayout), nil
}

func (t jsonTime) String() string { return time.Time(t).UTC().Format(marathonTimeLayout) }

func optTime(t *time.Time) *jsonTime {
	if t == nil {
		return nil
	}
	jt := jsonTime(*t)
	return &jt
}

// deploymentResult is Marathon's answer to a change that starts a deployment.
type deploymentResult struct {
	DeploymentID string   `json:"deploymentId"`
	Version      jsonTime `json:"version"`
}

func resultOf(ch Change) deploymentResult {
	return deploymentResult{DeploymentID: ch.Deployment.ID, Version: jsonTime(ch.Deployment.Version)}
}

// deploymentHeader names the deployment a response started, as Marathon
// sets it on every such response (RestResource.deploymentResult).
const deploymentHeader = "Marathon-Deployment-Id"

// writeDeployment answers a change that started a deployment: Marathon's
// {"deploymentId","version"} and its Marathon-Deployment-Id header.
func writeDeployment(w http.ResponseWriter, status int, ch Change) {
	w.Header().Set(deploymentHeader, ch.Deployment.ID)
	writeJSON(w, status, resultOf(ch))
}

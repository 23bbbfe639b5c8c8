package master

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/atollhq/atoll/events"
)

// /v2/tasks and /v2/apps/{id}/tasks: list and kill tasks.

// taskView is a task as Marathon shows it. Healthy is atoll's: the
// agent's verdict over all of the app's health checks.
type taskView struct {
	ID                 string                  `json:"id"`
	AppID              string                  `json:"appId"`
	Host               string                  `json:"host"`
	IPAddresses        []events.IPAddress      `json:"ipAddresses"`
	Ports              []int                   `json:"ports"`
	ServicePorts       []int                   `json:"servicePorts"`
	SlaveID            string                  `json:"slaveId"`
	State              events.TaskState        `json:"state"`
	StagedAt           jsonTime                `json:"stagedAt"`
	StartedAt          *jsonTime               `json:"startedAt"`
	Version            jsonTime                `json:"version"`
	HealthCheckResults []healthCheckResultView `json:"healthCheckResults"`
	Healthy            *bool                   `json:"healthy,omitempty"`
	Region             string                  `json:"region,omitempty"`
	Zone               string                  `json:"zone,omitempty"`
}

type healthCheckResultView struct {
	Alive               bool      `json:"alive"`
	ConsecutiveFailures int       `json:"consecutiveFailures"`
	FirstSuccess        *jsonTime `json:"firstSuccess"`
	LastFailure         *jsonTime `json:"lastFailure"`
	LastSuccess         *jsonTime `json:"lastSuccess"`
	LastFailureCause    string    `json:"lastFailureCause,omitempty"`
	TaskID              string    `json:"taskId"`
}

func taskViewOf(t events.Task) taskView {
	v := taskView{
		ID: t.ID, AppID: t.AppID, Host: t.Host,
		IPAddresses:        nonNil(t.IPAddresses),
		Ports:              nonNil(t.Ports),
		ServicePorts:       nonNil(t.ServicePorts),
		SlaveID:            t.AgentID,
		State:              t.State,
		StagedAt:           jsonTime(t.StagedAt),
		StartedAt:          optTime(t.StartedAt),
		Version:            jsonTime(t.Version),
		HealthCheckResults: make([]healthCheckResultView, len(t.HealthCheckResults)),
		Healthy:            t.Healthy,
		Region:             t.Region,
		Zone:               t.Zone,
	}
	for i, hr := range t.HealthCheckResults {
		v.HealthCheckResults[i] = healthCheckResultView{
			Alive: hr.Alive, ConsecutiveFailures: hr.ConsecutiveFailures,
			FirstSuccess: optTime(hr.FirstSuccess), LastFailure: optTime(hr.LastFailure),
			LastSuccess: optTime(hr.LastSuccess), LastFailureCause: hr.LastFailureCause,
			TaskID: hr.TaskID,
		}
	}
	return v
}

func taskViews(tasks []events.Task) []taskView {
	out := make([]taskView, len(tasks))
	for i, t := range tasks {
		out[i] = taskViewOf(t)
	}
	return out
}

type taskList struct {
	Tasks []taskView `json:"tasks"`
}

// listTasks is GET /v2/tasks, optionally only tasks in the given states
// (?status=running&status=staging, Marathon's lower-case names), by app
// and then by id. It is served from the read view, without the state's
// lock.
func (m *Master) listTasks(w http.ResponseWriter, r *http.Request) {
	if wantsText(r) {
		writeTaskText(w, m.reads.load().apps)
		return
	}
	var want []events.TaskState
	for _, s := range r.URL.Query()["status"] {
		want = append(want, events.TaskState("TASK_"+strings.ToUpper(s)))
	}
	apps := m.reads.load().apps
	size := 0
	for _, e := range apps {
		if err := e.tasks.encode(); err != nil {
			m.writeError(w, r, err)
			return
		}
		size += len(e.tasks.json) + 1
	}
	out := startJSON(w, http.StatusOK, size+len(`{"tasks":[]}`))
	out.WriteString(`{"tasks":[`)
	first := true
	for _, e := range apps {
		ts := e.tasks
		if len(want) == 0 {
			if len(ts.json) > 0 {
				if !first {
					out.WriteByte(',')
				}
				out.Write(ts.json)
				first = false
			}
			continue
		}
		for i, t := range ts.tasks {
			if !slices.Contains(want, t.State) {
				continue
			}
			if !first {
				out.WriteByte(',')
			}
			out.Write(ts.taskJSON(i))
			first = false
		}
	}
	out.WriteString("]}")
	out.end()
}

// getAppTasks is GET /v2/apps/{id}/tasks, served from the read view.
func (m *Master) getAppTasks(w http.ResponseWriter, r *http.Request, id string) {
	e, ok := m.reads.load().find(id)
	if !ok || e.app == nil {
		m.writeError(w, r, appNotFound(id))
		return
	}
	if wantsText(r) {
		writeTaskText(w, []*appEntry{e})
		return
	}
	if err := e.tasks.encode(); err != nil {
		m.writeError(w, r, err)
		return
	}
	out := startJSON(w, http.StatusOK, len(e.tasks.json)+len(`{"tasks":[]}`))
	out.WriteString(`{"tasks":[`)
	out.Write(e.tasks.json)
	out.WriteString("]}")
	out.end()
}

// killAppTasks is DELETE /v2/apps/{id}/tasks?host=&scale=: kills the
// app's tasks on a host (all of them without host, or with "*"). With
// scale the app shrinks by as many instances and the answer names the
// deployment; without, the tasks are replaced and the answer lists them.
func (m *Master) killAppTasks(w http.ResponseWriter, r *http.Request, id string, force bool) {
	host := r.URL.Query().Get("host")
	var ids []string
	found := false
	m.View(func(s *events.State) {
		if _, found = s.Apps[id]; !found {
			return
		}
		for _, t := range s.TasksOf(id) {
			// The agent's address too: a bridged task's own is its container's.
			if host == "" || host == "*" || t.Host == host || hasIP(t, host) || s.Agents[t.AgentID].IP == host {
				ids = append(ids, t.ID)
			}
		}
	})
	if !found {
		m.writeError(w, r, appNotFound(id))
		return
	}
	if len(ids) == 0 {
		// Nothing to kill: no deployment either.
		writeJSON(w, http.StatusOK, taskList{[]taskView{}})
		return
	}
	tasks, ch, err := m.KillTasks(id, ids, boolParam(r, "scale", false), force)
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	if ch != nil {
		writeDeployment(w, http.StatusOK, *ch)
		return
	}
	writeJSON(w, http.StatusOK, taskList{taskViews(tasks)})
}

func hasIP(t events.Task, ip string) bool {
	for _, a := range t.IPAddresses {
		if a.IPAddress == ip {
			return true
		}
	}
	return false
}

// killAppTask is DELETE /v2/apps/{id}/tasks/{taskId}?scale=.
func (m *Master) killAppTask(w http.ResponseWriter, r *http.Request, id, taskID string, force bool) {
	tasks, ch, err := m.KillTasks(id, []string{taskID}, boolParam(r, "scale", false), force)
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	if ch != nil {
		writeDeployment(w, http.StatusOK, *ch)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Task taskView `json:"task"`
	}{taskViewOf(tasks[0])})
}

// deleteTasks is POST /v2/tasks/delete?scale=&wipe=&force= with
// {"ids":[...]} (Marathon's TasksResource.killTasks): the named tasks are
// killed, ids that name no task are skipped. Without scale they are
// replaced and the answer lists them; with scale their apps shrink by as
// many instances and the answer names the deployment. wipe also forgets
// a resident task's reservations in Marathon; atoll has none, so it is a
// kill.
func (m *Master) deleteTasks(w http.ResponseWriter, r *http.Request) {
	scale, wipe, force := boolParam(r, "scale", false), boolParam(r, "wipe", false), boolParam(r, "force", false)
	if scale && wipe {
		writeMessage(w, http.StatusBadRequest, "You cannot use scale and wipe at the same time.")
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	var req struct {
		IDs []string `json:"ids"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		m.writeError(w, r, &InvalidJSONError{Message: "Invalid JSON", Details: []FieldErrors{{Path: "/", Errors: []string{err.Error()}}}})
		return
	}
	for _, id := range req.IDs {
		if app, rest, ok := strings.Cut(id, "."); !ok || app == "" || rest == "" {
			writeMessage(w, http.StatusBadRequest, fmt.Sprintf("Invalid task id '%s'.", id))
			return
		}
	}
	byApp := map[string][]string{}
	var apps []string
	m.View(func(s *events.State) {
		for _, id := range req.IDs {
			t, ok := s.Tasks[id]
			if !ok || slices.Contains(byApp[t.AppID], id) {
				continue
			}
			if byApp[t.AppID] == nil {
				apps = append(apps, t.AppID)
			}
			byApp[t.AppID] = append(byApp[t.AppID], id)
		}
	})
	slices.Sort(apps)
	if scale && len(apps) > 1 {
		// Marathon scales them all in one deployment, and so does atoll.
		ch, err := m.KillTasksScaled(byApp, force)
		if err != nil {
			m.writeError(w, r, err)
			return
		}
		writeDeployment(w, http.StatusOK, Change{Deployment: ch.Deployment})
		return
	}
	killed := []events.Task{}
	for _, app := range apps {
		tasks, ch, err := m.KillTasks(app, byApp[app], scale, force)
		if err != nil {
			m.writeError(w, r, err)
			return
		}
		if ch != nil {
			writeDeployment(w, http.StatusOK, *ch)
			return
		}
		killed = append(killed, tasks...)
	}
	writeJSON(w, http.StatusOK, taskList{taskViews(killed)})
}

package master

import (
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/atollhq/atoll/events"
)

// /v2/deployments and /v2/queue: the changes in progress, and the apps
// with instances still to place.

type deploymentView struct {
	ID             string              `json:"id"`
	Version        jsonTime            `json:"version"`
	AffectedApps   []string            `json:"affectedApps"`
	AffectedPods   []string            `json:"affectedPods"`
	Steps          []stepView          `json:"steps"`
	CurrentActions []currentActionView `json:"currentActions"`
	CurrentStep    int                 `json:"currentStep"`
	TotalSteps     int                 `json:"totalSteps"`
	// Failed is atoll's: why the deployment stopped making progress.
	Failed string `json:"failed,omitempty"`
}

type stepView struct {
	Actions []actionView `json:"actions"`
}

type actionView struct {
	Action string `json:"action"`
	App    string `json:"app"`
}

// currentActionView is Marathon's current action; Waiting is atoll's: why
// the action cannot progress.
type currentActionView struct {
	Action                string   `json:"action"`
	App                   string   `json:"app"`
	ReadinessCheckResults []string `json:"readinessCheckResults"`
	Waiting               string   `json:"waiting,omitempty"`
}

func deploymentViewOf(d events.Deployment) deploymentView {
	v := deploymentView{
		ID: d.ID, Version: jsonTime(d.Version),
		AffectedApps:   nonNil(d.AffectedApps),
		AffectedPods:   []string{},
		Steps:          make([]stepView, len(d.Steps)),
		CurrentActions: make([]currentActionView, len(d.CurrentActions)),
		CurrentStep:    d.CurrentStep,
		TotalSteps:     d.TotalSteps,
		Failed:         d.Failed,
	}
	for i, st := range d.Steps {
		acts := make([]actionView, len(st.Actions))
		for j, a := range st.Actions {
			acts[j] = actionView{Action: a.Action, App: a.App}
		}
		v.Steps[i] = stepView{Actions: acts}
	}
	for i, a := range d.CurrentActions {
		v.CurrentActions[i] = currentActionView{Action: a.Action, App: a.App,
			ReadinessCheckResults: []string{}, Waiting: a.Waiting}
	}
	return v
}

// listDeployments is GET /v2/deployments: a bare array, as Marathon's.
func (m *Master) listDeployments(w http.ResponseWriter, _ *http.Request) {
	views := []deploymentView{}
	m.View(func(s *events.State) {
		for _, d := range sortedDeployments(s) {
			views = append(views, deploymentViewOf(d))
		}
	})
	writeJSON(w, http.StatusOK, views)
}

// serveDeploymentPath is DELETE /v2/deployments/{id}: without force
// Marathon rolls back and names the rollback (200); with force it just
// stops the deployment (202, no body).
func (m *Master) serveDeploymentPath(w http.ResponseWriter, r *http.Request) {
	id := strings.Trim(strings.TrimPrefix(r.URL.Path, "/v2/deployments"), "/")
	if id == "" {
		methods{"GET": m.listDeployments}.ServeHTTP(w, r)
		return
	}
	methods{"DELETE": func(w http.ResponseWriter, r *http.Request) {
		force := boolParam(r, "force", false)
		ch, err := m.CancelDeployment(id, force)
		if err != nil {
			m.writeError(w, r, err)
			return
		}
		if force {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		writeDeployment(w, http.StatusOK, ch)
	}}.ServeHTTP(w, r)
}

type queueItem struct {
	App   appView    `json:"app"`
	Count int        `json:"count"`
	Delay queueDelay `json:"delay"`
}

// queueDelay is the launch backoff after task failures; overdue means
// launches may go ahead.
type queueDelay struct {
	TimeLeftSeconds int  `json:"timeLeftSeconds"`
	Overdue         bool `json:"overdue"`
}

// getQueue is GET /v2/queue: apps with instances of their current config
// still to launch, and their backoff. Why they wait is in each app's
// "waiting".
func (m *Master) getQueue(w http.ResponseWriter, _ *http.Request) {
	items := []queueItem{}
	m.View(func(s *events.State) {
		now := m.cfg.Now()
		var deps map[string][]events.Deployment // made once, if needed
		for _, a := range s.SortedApps() {
			count := queuedInstances(s, a)
			if count == 0 {
				continue
			}
			if _, held := m.heldByStepLocked(a.ID); held {
				continue // created with no instance yet, as Marathon's StartApplication(app, 0)
			}
			delay := queueDelay{Overdue: true}
			if ok, until := m.runtime.launchAllowed(a.ID, now); !ok {
				delay = queueDelay{TimeLeftSeconds: int(math.Ceil(until.Sub(now).Seconds()))}
			}
			if deps == nil {
				deps = deploymentsByApp(s)
			}
			items = append(items, queueItem{App: appViewOf(s, a, false, deps), Count: count, Delay: delay})
		}
	})
	writeJSON(w, http.StatusOK, struct {
		Queue []queueItem `json:"queue"`
	}{items})
}

// queuedInstances is how many instances of the app wait to be launched:
// Marathon's launch queue holds an app while it has fewer live tasks of
// its current config than it wants.
func queuedInstances(s *events.State, a events.App) int {
	live := 0
	for _, t := range s.TasksOf(a.ID) {
		switch t.State {
		case events.TaskStaging, events.TaskStarting, events.TaskRunning:
			if current(a, t) {
				live++
			}
		}
	}
	return max(a.Instances-live, 0)
}

// serveQueuePath is DELETE /v2/queue/{appId}/delay: the app's launch delay
// after failures (its backoff) is reset, so its next launch goes at once,
// as Marathon's QueueResource.resetDelay does.
func (m *Master) serveQueuePath(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutSuffix(strings.TrimRight(r.URL.Path, "/"), "/delay")
	id, _ := normalizeAppID(strings.TrimPrefix(rest, "/v2/queue")) // a bad id names no app: 404 below
	if !ok || id == "/" {
		writeMessage(w, http.StatusNotFound, fmt.Sprintf("no such API route: %s %s", r.Method, r.URL.Path))
		return
	}
	methods{"DELETE": func(w http.ResponseWriter, r *http.Request) {
		if err := m.ResetLaunchDelay(id); err != nil {
			m.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}}.ServeHTTP(w, r)
}

// ResetLaunchDelay forgets the app's failures, so its next launch is not
// held back; an app with nothing to launch is not in the queue (404).
func (m *Master) ResetLaunchDelay(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.actingLocked() {
		return ErrNotLeader
	}
	a, ok := m.state.Apps[id]
	if !ok || queuedInstances(m.state, a) == 0 {
		return &NotFoundError{Message: fmt.Sprintf("Application %s not found in tasks queue.", id)}
	}
	m.runtime.resetBackoff(id)
	delete(m.runtime.wake, id)
	m.runtime.dirty.apps[id] = struct{}{}
	m.kickReconcile()
	return nil
}

package master

import (
	"github.com/atollhq/atoll/events"
)

// Marathon's event JSON (its core/event/Events.scala and the event-bus
// docs), made from atoll's committed events. Field names and types are
// Marathon's; testdata/sse holds Marathon's examples that sse_test.go
// checks these against.

type apiPostEvent struct {
	// ClientIP is null for a change the API did not make.
	ClientIP      *string       `json:"clientIp"`
	URI           string        `json:"uri"`
	AppDefinition appDefinition `json:"appDefinition"`
	EventType     string        `json:"eventType"`
	Timestamp     jsonTime      `json:"timestamp"`
}

// appDefinition, the app as Marathon's AppDefinition JSON has it (the
// definition without /v2/apps' task counts and deployments), is made
// from the app schema: appdef_output_gen.go.

// appDefinitionOf is a's event view. The views take the app by pointer:
// the schema's show functions are called through interfaces, so the app
// they are given escapes, and an app already on the heap costs nothing.
func appDefinitionOf(a events.App) appDefinition { return appEventViewOf(&a) }

// groupChangeEvent is Marathon's group_change_success (a change was
// accepted) and group_change_failed (with the reason it was not).
type groupChangeEvent struct {
	GroupID   string   `json:"groupId"`
	Version   jsonTime `json:"version"`
	Reason    string   `json:"reason,omitempty"`
	EventType string   `json:"eventType"`
	Timestamp jsonTime `json:"timestamp"`
}

type appTerminatedEvent struct {
	AppID     string   `json:"appId"`
	EventType string   `json:"eventType"`
	Timestamp jsonTime `json:"timestamp"`
}

type statusUpdateEvent struct {
	SlaveID     string             `json:"slaveId"`
	TaskID      string             `json:"taskId"`
	TaskStatus  events.TaskState   `json:"taskStatus"`
	Message     string             `json:"message"`
	AppID       string             `json:"appId"`
	Host        string             `json:"host"`
	IPAddresses []events.IPAddress `json:"ipAddresses"`
	Ports       []int              `json:"ports"`
	Version     jsonTime           `json:"version"`
	EventType   string             `json:"eventType"`
	Timestamp   jsonTime           `json:"timestamp"`
}

type healthStatusChangedEvent struct {
	AppID string `json:"appId"`
	// TaskID is Marathon 1.3's name; InstanceID (1.4 on) is the same id
	// here, since an atoll instance is one task.
	TaskID     string   `json:"taskId"`
	InstanceID string   `json:"instanceId"`
	Version    jsonTime `json:"version"`
	Alive      bool     `json:"alive"`
	EventType  string   `json:"eventType"`
	Timestamp  jsonTime `json:"timestamp"`
}

// deploymentPlan is Marathon's plan in the "light" plan format (its
// ?plan-format=light, which marathon-lb asks for): without the original
// and target groups.
type deploymentPlan struct {
	ID      string           `json:"id"`
	Steps   []deploymentStep `json:"steps"`
	Version jsonTime         `json:"version"`
}

type deploymentStep struct {
	Actions []deploymentAction `json:"actions"`
}

type deploymentAction struct {
	Action string `json:"action"`
	App    string `json:"app"`
}

type deploymentStepEvent struct {
	Plan        deploymentPlan `json:"plan"`
	CurrentStep deploymentStep `json:"currentStep"`
	EventType   string         `json:"eventType"`
	Timestamp   jsonTime       `json:"timestamp"`
}

type deploymentEndEvent struct {
	ID        string         `json:"id"`
	Plan      deploymentPlan `json:"plan"`
	EventType string         `json:"eventType"`
	Timestamp jsonTime       `json:"timestamp"`
}

func planOf(d events.Deployment) deploymentPlan {
	p := deploymentPlan{ID: d.ID, Version: jsonTime(d.Version), Steps: make([]deploymentStep, len(d.Steps))}
	for i, s := range d.Steps {
		p.Steps[i] = stepOf(s.Actions)
	}
	return p
}

func stepOf(acts []events.DeploymentAction) deploymentStep {
	s := deploymentStep{Actions: make([]deploymentAction, len(acts))}
	for i, a := range acts {
		s.Actions[i] = deploymentAction{Action: a.Action, App: a.App}
	}
	return s
}

// stepAt is step n (1-based) of d, or its current actions when d has no
// such step.
func stepAt(d events.Deployment, n int) deploymentStep {
	if n >= 1 && n <= len(d.Steps) {
		return stepOf(d.Steps[n-1].Actions)
	}
	return stepOf(d.CurrentActions)
}

// sseFrames makes the Marathon events for committed event e. s is the
// state e applies to, before it is applied: what changed is told by
// comparing. The committer runs it over the published state
// (published.go); it must not keep s.
func sseFrames(s *events.State, e events.Event) []sseFrame {
	id := sseID(e.Epoch, e.Seq)
	ts := jsonTime(e.Time)
	switch e.Type {
	case events.AppUpdated:
		var before *events.App
		if a, ok := s.Apps[e.App.ID]; ok {
			before = &a
		}
		frames := healthCheckFrames(id, ts, before, e.App)
		// Marathon posts api_post_event from /v2/apps calls alone
		// (AppsResource.maybePostEvent): a group change, a bulk update,
		// a scale by /v2/tasks/delete or the master's own changes make
		// none, and only those calls carry an origin.
		if o := e.Origin; o != nil {
			ip := o.ClientIP
			post := apiPostEvent{
				ClientIP: &ip, URI: o.URI, AppDefinition: appEventViewOf(e.App),
				EventType: "api_post_event", Timestamp: ts,
			}
			frames = append([]sseFrame{frame(id, "api_post_event", post)}, frames...)
		}
		return frames
	case events.AppRemoved:
		a, ok := s.Apps[e.ID]
		if !ok {
			return nil
		}
		return append(healthCheckFrames(id, ts, &a, nil), frame(id, "app_terminated_event", appTerminatedEvent{
			AppID: e.ID, EventType: "app_terminated_event", Timestamp: ts,
		}))
	case events.TaskUpdated:
		return taskFrames(s, e, id, ts)
	case events.AgentUpdated, events.AgentRemoved:
		return agentFrames(e, id, ts)
	case events.DeploymentUpdated:
		old, existed := s.Deployments[e.Deployment.ID]
		d := *e.Deployment
		info := func() sseFrame {
			return frame(id, "deployment_info", deploymentStepEvent{
				Plan: planOf(d), CurrentStep: stepAt(d, d.CurrentStep),
				EventType: "deployment_info", Timestamp: ts,
			})
		}
		switch {
		case !existed:
			// Marathon's GroupManager tells of every accepted change of
			// the root group, app changes included, under the group the
			// change was made in.
			group := d.Group
			if group == "" && len(d.AffectedApps) > 0 {
				group = parentOf(d.AffectedApps[0])
			}
			return []sseFrame{frame(id, "group_change_success", groupChangeEvent{
				GroupID: group, Version: jsonTime(d.Version), EventType: "group_change_success", Timestamp: ts,
			}), info()}
		case d.Failed != "" && old.Failed == "":
			// Halted: Marathon's word for a deployment that will not
			// finish. It stays listed until rolled back or replaced.
			return []sseFrame{frame(id, "deployment_failed", deploymentEndEvent{
				ID: d.ID, Plan: planOf(d), EventType: "deployment_failed", Timestamp: ts,
			})}
		case d.CurrentStep > old.CurrentStep:
			return []sseFrame{frame(id, "deployment_step_success", deploymentStepEvent{
				Plan: planOf(old), CurrentStep: stepAt(old, old.CurrentStep),
				EventType: "deployment_step_success", Timestamp: ts,
			}), info()}
		}
		return nil // only why it waits changed: Marathon says nothing
	case events.DeploymentRemoved:
		d, ok := s.Deployments[e.ID]
		if !ok {
			return nil
		}
		if d.Failed != "" {
			return nil // deployment_failed was sent when it halted
		}
		if !deploymentConverged(s, d) {
			// Cancelled (or superseded by a forced change).
			return []sseFrame{frame(id, "deployment_failed", deploymentEndEvent{
				ID: d.ID, Plan: planOf(d), EventType: "deployment_failed", Timestamp: ts,
			})}
		}
		return []sseFrame{
			frame(id, "deployment_step_success", deploymentStepEvent{
				Plan: planOf(d), CurrentStep: stepAt(d, d.CurrentStep),
				EventType: "deployment_step_success", Timestamp: ts,
			}),
			frame(id, "deployment_success", deploymentEndEvent{
				ID: d.ID, Plan: planOf(d), EventType: "deployment_success", Timestamp: ts,
			}),
		}
	}
	// Agents, the leader record and task removals have no Marathon event.
	return nil
}

func taskFrames(s *events.State, e events.Event, id string, ts jsonTime) []sseFrame {
	t := *e.Task
	old, existed := s.Tasks[t.ID]
	var out []sseFrame
	if !existed || old.State != t.State || old.Message != t.Message {
		out = append(out, frame(id, "status_update_event", statusUpdateEvent{
			SlaveID: t.AgentID, TaskID: t.ID, TaskStatus: t.State, Message: t.Message,
			AppID: t.AppID, Host: t.Host, IPAddresses: nonNil(t.IPAddresses), Ports: nonNil(t.Ports),
			Version: jsonTime(t.Version), EventType: "status_update_event", Timestamp: ts,
		}))
	}
	if t.Healthy != nil && (!existed || old.Healthy == nil || *old.Healthy != *t.Healthy) {
		out = append(out, frame(id, "health_status_changed_event", healthStatusChangedEvent{
			AppID: t.AppID, TaskID: t.ID, InstanceID: t.ID, Version: jsonTime(t.Version),
			Alive: *t.Healthy, EventType: "health_status_changed_event", Timestamp: ts,
		}))
	}
	return append(out, instanceFrames(id, ts, t, old, existed)...)
}

// deploymentConverged tells a deployment that ended because its apps
// reached their target (running as many tasks as instances, or, for a
// removed app, none) from one that was cancelled. The committed removal
// does not say which; the master removes a deployment on success only
// when this holds.
func deploymentConverged(s *events.State, d events.Deployment) bool {
	for _, appID := range d.AffectedApps {
		tasks := s.TasksOf(appID)
		app, ok := s.Apps[appID]
		if !ok {
			if len(tasks) > 0 {
				return false
			}
			continue
		}
		running := 0
		for _, t := range tasks {
			if t.State == events.TaskRunning {
				running++
			}
		}
		if running != app.Instances || len(tasks) != app.Instances {
			return false
		}
	}
	return true
}

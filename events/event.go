package events

import (
	"encoding/json"
	"fmt"
	"time"
)

// Type names what an event changes.
type Type string

const (
	AgentUpdated      Type = "agent_updated"
	AgentRemoved      Type = "agent_removed"
	AppUpdated        Type = "app_updated"
	AppRemoved        Type = "app_removed"
	TaskUpdated       Type = "task_updated"
	TaskRemoved       Type = "task_removed"
	DeploymentUpdated Type = "deployment_updated"
	DeploymentRemoved Type = "deployment_removed"
	GroupUpdated      Type = "group_updated"
	GroupRemoved      Type = "group_removed"
	LeaderChanged     Type = "leader_changed"
	// AppVersionAdded keeps an app definition in the app's history (its
	// Event.App); AppVersionRemoved forgets one (Event.App names it by id
	// and version only). The leader decides how many to keep (Marathon's
	// --zk_max_versions); AppRemoved forgets them all, as Marathon does.
	AppVersionAdded   Type = "app_version_added"
	AppVersionRemoved Type = "app_version_removed"
	// GroupVersionAdded keeps what a group held at one of its versions
	// (Event.GroupVersion); GroupVersionRemoved forgets one (named by id
	// and version). AppKept keeps an app definition that a group version
	// refers to once the app's history lets go of it (Event.App);
	// AppReleased forgets one no group version refers to any more. See
	// groupversions.go.
	GroupVersionAdded   Type = "group_version_added"
	GroupVersionRemoved Type = "group_version_removed"
	AppKept             Type = "app_kept"
	AppReleased         Type = "app_released"
	// Sync is not a state change: the leader publishes its current
	// (epoch, seq) every second on the event subject so that a follower
	// which missed the last event of a quiet period notices, with the
	// digest of its chain at that seq (see Chain) so that a follower
	// which applied anything else notices too.
	Sync Type = "sync"
)

// Event is one change to the cluster state. It carries the whole new record,
// or only its id on removal. Epoch and Seq are stamped by the leader: Seq
// rises by one per event, across epochs.
//
// A TaskUpdated event whose task is in a terminal state removes the task
// from the state; the event still carries the final record so consumers
// (the SSE bridge, the CLI) can report how the task ended.
type Event struct {
	Epoch      uint64      `json:"epoch"`
	Seq        uint64      `json:"seq"`
	Type       Type        `json:"type"`
	Time       time.Time   `json:"time"`
	ID         string      `json:"id,omitempty"`
	Agent      *Agent      `json:"agent,omitempty"`
	App        *App        `json:"app,omitempty"`
	Task       *Task       `json:"task,omitempty"`
	Deployment *Deployment `json:"deployment,omitempty"`
	Leader     *Leader     `json:"leader,omitempty"`
	Group      *Group      `json:"group,omitempty"`
	// GroupVersion is the payload of GroupVersionAdded and
	// GroupVersionRemoved.
	GroupVersion *GroupVersion `json:"groupVersion,omitempty"`
	// Origin is who asked for the change, for changes made through the
	// API (Marathon's api_post_event names the client).
	Origin *Origin `json:"origin,omitempty"`
	// Digest is the leader's chain at (Epoch, Seq), on sync ticks only;
	// zero (absent) when the leader does not know it.
	Digest Digest `json:"digest,omitzero"`
}

// Change is an unstamped event: what the leader wants to happen. The leader
// turns it into an Event with Stamp.
type Change struct {
	Type       Type
	ID         string
	Agent      *Agent
	App        *App
	Task       *Task
	Deployment *Deployment
	Leader     *Leader
	Group      *Group
	// GroupVersion is GroupVersionAdded's and GroupVersionRemoved's.
	GroupVersion *GroupVersion
	Origin       *Origin
}

// Origin is the API call behind a change: the client's address and the
// path it called.
type Origin struct {
	ClientIP string `json:"clientIp"`
	URI      string `json:"uri"`
}

// Constructors for every change; they are the only way changes are built.

func PutAgent(a Agent) Change      { return Change{Type: AgentUpdated, ID: a.ID, Agent: &a} }
func DeleteAgent(id string) Change { return Change{Type: AgentRemoved, ID: id} }
func PutApp(a App) Change          { return Change{Type: AppUpdated, ID: a.ID, App: &a} }
func DeleteApp(id string) Change   { return Change{Type: AppRemoved, ID: id} }
func PutAppVersion(a App) Change   { return Change{Type: AppVersionAdded, ID: a.ID, App: &a} }
func DeleteAppVersion(id string, version time.Time) Change {
	return Change{Type: AppVersionRemoved, ID: id, App: &App{ID: id, Version: version}}
}
func PutTask(t Task) Change       { return Change{Type: TaskUpdated, ID: t.ID, Task: &t} }
func DeleteTask(id string) Change { return Change{Type: TaskRemoved, ID: id} }
func PutDeployment(d Deployment) Change {
	return Change{Type: DeploymentUpdated, ID: d.ID, Deployment: &d}
}
func DeleteDeployment(id string) Change { return Change{Type: DeploymentRemoved, ID: id} }
func PutLeader(l Leader) Change         { return Change{Type: LeaderChanged, ID: l.ID, Leader: &l} }
func PutGroup(g Group) Change           { return Change{Type: GroupUpdated, ID: g.ID, Group: &g} }
func DeleteGroup(id string) Change      { return Change{Type: GroupRemoved, ID: id} }
func PutGroupVersion(g GroupVersion) Change {
	return Change{Type: GroupVersionAdded, ID: g.ID, GroupVersion: &g}
}
func DeleteGroupVersion(id string, version time.Time) Change {
	return Change{Type: GroupVersionRemoved, ID: id, GroupVersion: &GroupVersion{ID: id, Version: version}}
}
func KeepApp(a App) Change { return Change{Type: AppKept, ID: a.ID, App: &a} }
func ReleaseApp(id string, version time.Time) Change {
	return Change{Type: AppReleased, ID: id, App: &App{ID: id, Version: version}}
}

// Stamp makes the event that follows state s: the next seq in the given
// epoch, at time now.
func (c Change) Stamp(s *State, epoch uint64, now time.Time) Event {
	return Event{
		Epoch: epoch, Seq: s.Seq + 1, Type: c.Type, Time: now, ID: c.ID,
		Agent: c.Agent, App: c.App, Task: c.Task, Deployment: c.Deployment, Leader: c.Leader, Origin: c.Origin,
		Group: c.Group, GroupVersion: c.GroupVersion,
	}
}

// Validate checks that the event is well formed: a known type with the
// payload that type needs. Apply calls it; transports call it on decode.
func (e *Event) Validate() error {
	missing := func(what string) error {
		return fmt.Errorf("event %d-%d %s: missing %s", e.Epoch, e.Seq, e.Type, what)
	}
	switch e.Type {
	case AgentUpdated:
		if e.Agent == nil || e.Agent.ID == "" {
			return missing("agent")
		}
	case AppUpdated:
		if e.App == nil || e.App.ID == "" {
			return missing("app")
		}
	case AppVersionAdded, AppVersionRemoved, AppKept, AppReleased:
		if e.App == nil || e.App.ID == "" || e.App.Version.IsZero() {
			return missing("app id and version")
		}
	case TaskUpdated:
		if e.Task == nil || e.Task.ID == "" {
			return missing("task")
		}
	case DeploymentUpdated:
		if e.Deployment == nil || e.Deployment.ID == "" {
			return missing("deployment")
		}
	case LeaderChanged:
		if e.Leader == nil {
			return missing("leader")
		}
	case GroupUpdated:
		if e.Group == nil || e.Group.ID == "" {
			return missing("group")
		}
	case GroupVersionAdded, GroupVersionRemoved:
		if e.GroupVersion == nil || e.GroupVersion.ID == "" || e.GroupVersion.Version.IsZero() {
			return missing("group id and version")
		}
	case AgentRemoved, AppRemoved, TaskRemoved, DeploymentRemoved, GroupRemoved:
		if e.ID == "" {
			return missing("id")
		}
	case Sync:
	default:
		return fmt.Errorf("event %d-%d: unknown type %q", e.Epoch, e.Seq, e.Type)
	}
	if e.Type != Sync && !e.Digest.IsZero() {
		return fmt.Errorf("event %d-%d %s: a digest belongs on sync ticks only", e.Epoch, e.Seq, e.Type)
	}
	return nil
}

// DecodeEvent parses and validates one event.
func DecodeEvent(data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// SSEID is the event's id on the SSE stream: "epoch-seq".
func (e *Event) SSEID() string { return fmt.Sprintf("%d-%d", e.Epoch, e.Seq) }

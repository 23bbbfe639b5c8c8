package events

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
)

// ErrOutOfOrder is returned by Apply for an event that does not directly
// follow the state: a gap, a duplicate, or an older epoch.
var ErrOutOfOrder = errors.New("event out of order")

// State is the whole cluster state. Records are stored by value; callers
// never share them with the state.
type State struct {
	Epoch       uint64                `json:"epoch"`
	Seq         uint64                `json:"seq"`
	Leader      *Leader               `json:"leader,omitempty"`
	Agents      map[string]Agent      `json:"agents"`
	Apps        map[string]App        `json:"apps"`
	Tasks       map[string]Task       `json:"tasks"`
	Deployments map[string]Deployment `json:"deployments"`
	// Groups are the groups with a record of their own (see Group).
	Groups map[string]Group `json:"groups,omitempty"`
	// AppVersions is each app's history of definitions, oldest first
	// (versions.go). Only the leader's states keep it: followers drop it
	// (DropVersions), and what NATS carries leaves it out (Redacted).
	AppVersions map[string][]App `json:"appVersions,omitempty"`
	// GroupVersions is what each group held at its versions, oldest
	// first, and KeptApps the app definitions they refer to that
	// AppVersions no longer keeps (groupversions.go). Like AppVersions,
	// the leader's alone.
	GroupVersions map[string][]GroupVersion `json:"groupVersions,omitempty"`
	KeptApps      map[string][]App          `json:"keptApps,omitempty"`
	// AppFailures is each app's last task failure (failures.go).
	AppFailures map[string]TaskFailure `json:"appFailures,omitempty"`

	tasksByApp *taskIndex // see state_index.go
	byAgent    bool       // index by agent too (IndexByAgent)
	noVersions bool       // see DropVersions
}

// NewState returns the empty state at (0, 0).
func NewState() *State {
	return &State{
		Agents:      map[string]Agent{},
		Apps:        map[string]App{},
		Tasks:       map[string]Task{},
		Deployments: map[string]Deployment{},
		Groups:      map[string]Group{},
	}
}

// Apply is the only way the state changes. It accepts exactly the event
// that follows the state (seq+1, same or newer epoch) and leaves the state
// untouched on any error.
func (s *State) Apply(e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if e.Type == Sync {
		return fmt.Errorf("apply %d-%d: sync is not a state change", e.Epoch, e.Seq)
	}
	if e.Seq != s.Seq+1 || e.Epoch < s.Epoch {
		return fmt.Errorf("apply %d-%d on state %d-%d: %w", e.Epoch, e.Seq, s.Epoch, s.Seq, ErrOutOfOrder)
	}
	switch e.Type {
	case AgentUpdated:
		s.Agents[e.Agent.ID] = *e.Agent
	case AgentRemoved:
		delete(s.Agents, e.ID)
	case AppUpdated:
		s.Apps[e.App.ID] = *e.App
	case AppRemoved:
		delete(s.Apps, e.ID)
		delete(s.AppVersions, e.ID)
		delete(s.AppFailures, e.ID)
	case AppVersionAdded, AppVersionRemoved:
		s.applyVersion(e)
	case GroupVersionAdded, GroupVersionRemoved, AppKept, AppReleased:
		s.applyGroupVersion(e)
	case TaskUpdated:
		if e.Task.State.Terminal() {
			s.noteFailure(e)
			s.dropTask(e.Task.ID)
		} else {
			s.putTask(s.shareStrings(*e.Task))
		}
	case TaskRemoved:
		s.dropTask(e.ID)
	case DeploymentUpdated:
		s.Deployments[e.Deployment.ID] = *e.Deployment
	case DeploymentRemoved:
		delete(s.Deployments, e.ID)
	case LeaderChanged:
		l := *e.Leader
		s.Leader = &l
	case GroupUpdated:
		if s.Groups == nil {
			s.Groups = map[string]Group{}
		}
		s.Groups[e.Group.ID] = *e.Group
	case GroupRemoved:
		delete(s.Groups, e.ID)
	}
	s.Epoch, s.Seq = e.Epoch, e.Seq
	return nil
}

// shareStrings points a task's copies of its app id, agent id, host,
// address, address protocol and state at the strings its app and agent
// records (or the constants) already hold: every decoded event brings
// fresh copies, and at 50,000 tasks they add up to megabytes in every
// follower.
func (s *State) shareStrings(t Task) Task {
	t.State = t.State.intern()
	if a, ok := s.Apps[t.AppID]; ok {
		t.AppID = a.ID
	}
	if ag, ok := s.Agents[t.AgentID]; ok {
		t.AgentID = ag.ID
		if t.Host == ag.Hostname {
			t.Host = ag.Hostname
		}
		if r := ag.Attributes["region"]; t.Region == r {
			t.Region = r
		}
		if z := ag.Attributes["zone"]; t.Zone == z {
			t.Zone = z
		}
		// The slice may be the event's: change a copy.
		t.IPAddresses = slices.Clone(t.IPAddresses)
		for i := range t.IPAddresses {
			ip := &t.IPAddresses[i]
			if ip.IPAddress == ag.IP {
				ip.IPAddress = ag.IP
			}
			switch ip.Protocol {
			case "IPv4":
				ip.Protocol = "IPv4"
			case "IPv6":
				ip.Protocol = "IPv6"
			}
		}
	}
	return t
}

// Clone returns a copy that shares no maps with s. Records themselves are
// copied shallowly: their slices and maps are never mutated in place.
func (s *State) Clone() *State {
	c := s.CloneUnindexed()
	c.Reindex()
	return c
}

// CloneUnindexed is Clone without building the copy's task index: for a
// copy that is encoded rather than asked (a follower's snapshot), since
// the index is most of what Clone costs at 100,000 tasks. Its answers are
// the same; its first Apply builds the index, and reads before that scan.
func (s *State) CloneUnindexed() *State {
	c := &State{
		Epoch:       s.Epoch,
		Seq:         s.Seq,
		Agents:      make(map[string]Agent, len(s.Agents)),
		Apps:        make(map[string]App, len(s.Apps)),
		Tasks:       make(map[string]Task, len(s.Tasks)),
		Deployments: make(map[string]Deployment, len(s.Deployments)),
		Groups:      make(map[string]Group, len(s.Groups)),
		byAgent:     s.byAgent,
		noVersions:  s.noVersions,
	}
	if s.AppVersions != nil {
		c.AppVersions = maps.Clone(s.AppVersions) // the histories are never changed in place
	}
	if s.GroupVersions != nil {
		c.GroupVersions = maps.Clone(s.GroupVersions) // never changed in place either
	}
	if s.KeptApps != nil {
		c.KeptApps = maps.Clone(s.KeptApps)
	}
	if s.AppFailures != nil {
		c.AppFailures = maps.Clone(s.AppFailures)
	}
	if s.Leader != nil {
		l := *s.Leader
		c.Leader = &l
	}
	for k, v := range s.Agents {
		c.Agents[k] = v
	}
	for k, v := range s.Apps {
		c.Apps[k] = v
	}
	for k, v := range s.Tasks {
		c.Tasks[k] = v
	}
	for k, v := range s.Deployments {
		c.Deployments[k] = v
	}
	for k, v := range s.Groups {
		c.Groups[k] = v
	}
	return c
}

// Normalize makes a decoded state usable: nil maps become empty ones.
func (s *State) Normalize() *State {
	if s.Agents == nil {
		s.Agents = map[string]Agent{}
	}
	if s.Apps == nil {
		s.Apps = map[string]App{}
	}
	if s.Tasks == nil {
		s.Tasks = map[string]Task{}
	}
	if s.Deployments == nil {
		s.Deployments = map[string]Deployment{}
	}
	if s.Groups == nil {
		s.Groups = map[string]Group{}
	}
	return s
}

// SortedAgents returns the agents sorted by id.
func (s *State) SortedAgents() []Agent {
	out := make([]Agent, 0, len(s.Agents))
	for _, a := range s.Agents {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SortedApps returns the apps sorted by id.
func (s *State) SortedApps() []App {
	out := make([]App, 0, len(s.Apps))
	for _, a := range s.Apps {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

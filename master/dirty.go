package master

import (
	"slices"
	"time"

	"github.com/atollhq/atoll/events"
)

// A reconcile pass looks only at what changed since the last one (as
// Kubernetes controllers work off a queue): the apps whose records, tasks
// or deployments changed, the agents whose tasks or resources changed (for
// the scheduler's pool), and the apps whose timers ran out. Every change
// goes through commitLocked, which notes what it touched here, so nothing
// that changes can be missed; a periodic full pass is the safety net.

// fullPassEvery is how often a pass looks at every app regardless.
const fullPassEvery = time.Minute

type dirtySet struct {
	apps   map[string]struct{}
	agents map[string]struct{}
	all    bool // every app and agent
}

func newDirtySet() dirtySet {
	return dirtySet{apps: map[string]struct{}{}, agents: map[string]struct{}{}}
}

// noteChangeLocked records what event e touches; prev is the task it
// replaces, if it is a task event and there was one.
func (m *Master) noteChangeLocked(e events.Event, prev *events.Task) {
	r := m.runtime
	d := &r.dirty
	switch e.Type {
	case events.AppUpdated, events.AppRemoved:
		d.apps[e.ID] = struct{}{}
		if sp := r.servicePorts; sp != nil {
			if e.App != nil {
				sp.Set(*e.App)
			} else {
				sp.Remove(e.ID)
			}
		}
	case events.TaskUpdated, events.TaskRemoved:
		if prev != nil {
			m.live.changed(prev.AgentID)
		}
		if e.Task != nil && (prev == nil || prev.AgentID != e.Task.AgentID) {
			m.live.changed(e.Task.AgentID)
		}
		// The pool's view of an agent changes only when what its tasks
		// hold does: a task comes, goes, or stops holding resources.
		// A status update alone (staging → running) leaves it be.
		if prev != nil {
			d.apps[prev.AppID] = struct{}{}
			if e.Task == nil || holds(*prev) != holds(*e.Task) || prev.AgentID != e.Task.AgentID {
				d.agents[prev.AgentID] = struct{}{}
			}
		}
		id := e.ID
		delete(r.staging, id)
		delete(r.killing, id)
		if t := e.Task; t != nil {
			id = t.ID
			d.apps[t.AppID] = struct{}{}
			if prev == nil || holds(*prev) != holds(*t) || prev.AgentID != t.AgentID {
				d.agents[t.AgentID] = struct{}{}
			}
			switch t.State {
			case events.TaskStaging, events.TaskStarting:
				r.staging[t.ID] = struct{}{}
			case events.TaskKilling:
				r.killing[t.ID] = struct{}{}
			}
			if t.State.Terminal() {
				r.forgetTask(t.ID)
				m.live.forgetTasks([]string{t.ID})
			}
		} else {
			r.forgetTask(id)
			m.live.forgetTasks([]string{id})
		}
	case events.DeploymentUpdated:
		for _, a := range e.Deployment.AffectedApps {
			d.apps[a] = struct{}{}
		}
	case events.AgentUpdated, events.AgentRemoved:
		d.agents[e.ID] = struct{}{}
		m.live.changed(e.ID)
		// An agent that joins or changes may fit what did not fit before.
		for id := range r.unplaced {
			d.apps[id] = struct{}{}
		}
	}
}

// markAllDirtyLocked has the next pass look at everything: after the
// working state was taken back, or as the periodic safety net.
func (m *Master) markAllDirtyLocked() {
	m.runtime.dirty.all = true
	m.kickReconcile()
}

// takeDirtyLocked returns, sorted, the apps the pass must look at now
// (changed, woken, or all) and whether the pool must be rebuilt whole, and
// the agents whose pool entries must be; it empties the set.
func (m *Master) takeDirtyLocked(now time.Time) (apps []string, all bool, agents []string) {
	r := m.runtime
	for id, at := range r.wake {
		if !now.Before(at) {
			r.dirty.apps[id] = struct{}{}
			delete(r.wake, id)
		}
	}
	all = r.dirty.all
	if all {
		for id := range m.state.Apps {
			r.dirty.apps[id] = struct{}{}
		}
		// Tasks of apps that are gone are reaped by their app's pass.
		for id := range r.appStatus {
			r.dirty.apps[id] = struct{}{}
		}
	}
	apps = make([]string, 0, len(r.dirty.apps))
	for id := range r.dirty.apps {
		apps = append(apps, id)
	}
	slices.Sort(apps)
	for id := range r.dirty.agents {
		agents = append(agents, id)
	}
	r.dirty = newDirtySet()
	return apps, all, agents
}

// wakeLocked asks for a pass of app at when (the earliest asked wins).
func (m *Master) wakeLocked(appID string, when time.Time) {
	if at, ok := m.runtime.wake[appID]; !ok || when.Before(at) {
		m.runtime.wake[appID] = when
	}
}

// nextWakeLocked is the earliest timer (zero if none).
func (m *Master) nextWakeLocked() time.Time {
	var next time.Time
	for _, at := range m.runtime.wake {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

// holds reports whether a task holds its agent's resources, as the
// scheduler's pool counts them.
func holds(t events.Task) bool { return t.State.Active() }

// rebuildInFlightLocked makes the staging and killing sets anew from the
// state, after changes were taken back (they were noted as they were
// made, not as they were undone). It costs every task, once per failed
// store write.
func (m *Master) rebuildInFlightLocked() {
	r := m.runtime
	r.staging, r.killing = map[string]struct{}{}, map[string]struct{}{}
	for id, t := range m.state.Tasks {
		switch t.State {
		case events.TaskStaging, events.TaskStarting:
			r.staging[id] = struct{}{}
		case events.TaskKilling:
			r.killing[id] = struct{}{}
		}
	}
}

package events

// Undo is what it takes to put a state back as it was before one event:
// the leader applies a change before its store has made it durable, and
// takes it back if the store then fails, so that a write it could not
// make changes nothing.
type Undo struct {
	epoch, seq uint64
	leader     *Leader
	typ        Type
	id         string
	// prev is the record the event replaced, one of these by type; had
	// says whether there was one.
	had        bool
	agent      Agent
	app        App
	task       Task
	deployment Deployment
	group      Group
	// versions is the app's history before the event, for the events
	// that change it (AppRemoved, AppVersionAdded, AppVersionRemoved).
	versions    []App
	hadVersions bool
	// groupVersions and kept are a group's versions and an app's kept
	// definitions before the events that change them.
	groupVersions []GroupVersion
	kept          []App
	// failure is the app's last failure before the event, for the
	// events that change it (AppRemoved, a TaskUpdated that fails).
	failure    TaskFailure
	hadFailure bool
	failureApp string
}

// ApplyUndoable is Apply that also returns how to take the event back.
// Undos must be taken back newest first (Revert).
func (s *State) ApplyUndoable(e Event) (Undo, error) {
	u := Undo{epoch: s.Epoch, seq: s.Seq, leader: s.Leader, typ: e.Type, id: e.ID}
	switch e.Type {
	case AgentUpdated, AgentRemoved:
		u.id = e.ID
		if e.Agent != nil {
			u.id = e.Agent.ID
		}
		u.agent, u.had = s.Agents[u.id]
	case AppUpdated, AppRemoved:
		if e.App != nil {
			u.id = e.App.ID
		}
		u.app, u.had = s.Apps[u.id]
		u.versions, u.hadVersions = s.AppVersions[u.id]
		u.failureApp = u.id
		u.failure, u.hadFailure = s.AppFailures[u.id]
	case AppVersionAdded, AppVersionRemoved:
		if e.App != nil {
			u.id = e.App.ID
		}
		u.versions, u.hadVersions = s.AppVersions[u.id]
	case GroupVersionAdded, GroupVersionRemoved:
		if e.GroupVersion != nil {
			u.id = e.GroupVersion.ID
		}
		u.groupVersions, u.had = s.GroupVersions[u.id]
	case AppKept, AppReleased:
		if e.App != nil {
			u.id = e.App.ID
		}
		u.kept, u.had = s.KeptApps[u.id]
	case TaskUpdated, TaskRemoved:
		if e.Task != nil {
			u.id = e.Task.ID
			u.failureApp = e.Task.AppID
			u.failure, u.hadFailure = s.AppFailures[e.Task.AppID]
		}
		u.task, u.had = s.Tasks[u.id]
	case DeploymentUpdated, DeploymentRemoved:
		if e.Deployment != nil {
			u.id = e.Deployment.ID
		}
		u.deployment, u.had = s.Deployments[u.id]
	case GroupUpdated, GroupRemoved:
		if e.Group != nil {
			u.id = e.Group.ID
		}
		u.group, u.had = s.Groups[u.id]
	}
	if err := s.Apply(e); err != nil {
		return Undo{}, err
	}
	return u, nil
}

// Revert takes back the last event applied: u must be the Undo of the
// event that brought the state to its current seq.
func (s *State) Revert(u Undo) {
	switch u.typ {
	case AgentUpdated, AgentRemoved:
		if u.had {
			s.Agents[u.id] = u.agent
		} else {
			delete(s.Agents, u.id)
		}
	case AppUpdated, AppRemoved:
		if u.had {
			s.Apps[u.id] = u.app
		} else {
			delete(s.Apps, u.id)
		}
		s.revertVersions(u)
		s.revertFailure(u)
	case AppVersionAdded, AppVersionRemoved:
		s.revertVersions(u)
	case GroupVersionAdded, GroupVersionRemoved:
		if u.had {
			s.GroupVersions[u.id] = u.groupVersions
		} else {
			delete(s.GroupVersions, u.id)
		}
	case AppKept, AppReleased:
		if u.had {
			s.KeptApps[u.id] = u.kept
		} else {
			delete(s.KeptApps, u.id)
		}
	case TaskUpdated, TaskRemoved:
		if u.had {
			s.putTask(u.task)
		} else {
			s.dropTask(u.id)
		}
		s.revertFailure(u)
	case DeploymentUpdated, DeploymentRemoved:
		if u.had {
			s.Deployments[u.id] = u.deployment
		} else {
			delete(s.Deployments, u.id)
		}
	case GroupUpdated, GroupRemoved:
		if u.had {
			s.Groups[u.id] = u.group
		} else {
			delete(s.Groups, u.id)
		}
	}
	s.Epoch, s.Seq, s.Leader = u.epoch, u.seq, u.leader
}

// revertVersions puts back an app's history as u found it.
func (s *State) revertVersions(u Undo) {
	if u.hadVersions {
		s.AppVersions[u.id] = u.versions
	} else {
		delete(s.AppVersions, u.id)
	}
}

// revertFailure puts back an app's last failure as u found it.
func (s *State) revertFailure(u Undo) {
	switch {
	case u.failureApp == "":
	case u.hadFailure:
		s.AppFailures[u.failureApp] = u.failure
	default:
		delete(s.AppFailures, u.failureApp)
	}
}

package events

import (
	"slices"
	"strings"
)

// taskIndex is the ids of each app's tasks, so that the tasks of one app
// cost what that app has, not what the cluster has: the master's
// reconcile pass and the LB sidecar's render of a task change look at one
// app at a time, at 10,000 apps.
//
// It is built by writers only (Apply, Clone, Reindex), never by a reader:
// readers of one State may run side by side under a read lock. count is
// the number of task ids it holds; when that is not len(Tasks), someone
// wrote Tasks directly and readers fall back to a scan.
type taskIndex struct {
	byApp   map[string]map[string]struct{}
	byAgent map[string]map[string]struct{}
	count   int
	// counts are each app's tasks by what the API counts, so that a
	// listing of 10,000 apps does not visit 100,000 tasks.
	counts map[string]*TaskCounts
}

// TaskCounts is how many of an app's tasks are in the states Marathon's
// app view counts. Healthy and Unhealthy count tasks whose last health
// verdict is known, whether or not the app still checks health.
type TaskCounts struct {
	Staged, Running, Healthy, Unhealthy int
}

// Count counts one more task, as the state's own per-app counts do (the
// master's read view keeps its own).
func (c *TaskCounts) Count(t Task) { c.change(t, 1) }

func (c *TaskCounts) change(t Task, by int) {
	switch t.State {
	case TaskStaging, TaskStarting:
		c.Staged += by
	case TaskRunning:
		c.Running += by
	}
	if t.Healthy != nil {
		if *t.Healthy {
			c.Healthy += by
		} else {
			c.Unhealthy += by
		}
	}
}

// buildTaskIndex indexes tasks by app, and by agent and with per-app
// counts too when byAgent is set: only the master asks for those, and at
// 50,000 tasks they would cost every sidecar megabytes.
func buildTaskIndex(tasks map[string]Task, byAgent bool) *taskIndex {
	ix := &taskIndex{byApp: map[string]map[string]struct{}{}}
	if byAgent {
		ix.byAgent = map[string]map[string]struct{}{}
		ix.counts = map[string]*TaskCounts{}
	}
	for _, t := range tasks {
		ix.add(t)
	}
	return ix
}

func (ix *taskIndex) add(t Task) {
	if addID(ix.byApp, t.AppID, t.ID) {
		ix.count++
		if ix.counts != nil {
			c := ix.counts[t.AppID]
			if c == nil {
				c = &TaskCounts{}
				ix.counts[t.AppID] = c
			}
			c.change(t, 1)
		}
	}
	if ix.byAgent != nil {
		addID(ix.byAgent, t.AgentID, t.ID)
	}
}

func (ix *taskIndex) remove(t Task) {
	if dropID(ix.byApp, t.AppID, t.ID) {
		ix.count--
		if c := ix.counts[t.AppID]; c != nil {
			c.change(t, -1)
			if _, left := ix.byApp[t.AppID]; !left {
				delete(ix.counts, t.AppID)
			}
		}
	}
	if ix.byAgent != nil {
		dropID(ix.byAgent, t.AgentID, t.ID)
	}
}

// addID and dropID keep one set of an index; they report whether it changed.
func addID(sets map[string]map[string]struct{}, key, id string) bool {
	ids := sets[key]
	if ids == nil {
		ids = map[string]struct{}{}
		sets[key] = ids
	}
	if _, ok := ids[id]; ok {
		return false
	}
	ids[id] = struct{}{}
	return true
}

func dropID(sets map[string]map[string]struct{}, key, id string) bool {
	ids := sets[key]
	if _, ok := ids[id]; !ok {
		return false
	}
	delete(ids, id)
	if len(ids) == 0 {
		delete(sets, key)
	}
	return true
}

// Reindex rebuilds the app → tasks index; call it after writing Tasks
// other than through Apply (a state assembled by hand or decoded).
func (s *State) Reindex() { s.tasksByApp = buildTaskIndex(s.Tasks, s.byAgent) }

// IndexByAgent has the state keep its tasks indexed by agent as well
// (TasksOn, CountTasksOn) and count them per app (CountsOf), from now on
// and in its clones: what the master needs, and sidecars do without.
func (s *State) IndexByAgent() {
	s.byAgent = true
	s.Reindex()
}

// agentIndexReady reports whether TasksOn may use the index.
func (s *State) agentIndexReady() bool { return s.indexReady() && s.tasksByApp.byAgent != nil }

// putTask and dropTask are Apply's only writes of Tasks; they keep the
// index in step, building it first when it is missing or out of step.
func (s *State) putTask(t Task) {
	ix := s.indexForWrite()
	if old, ok := s.Tasks[t.ID]; ok {
		ix.remove(old)
	}
	s.Tasks[t.ID] = t
	ix.add(t)
}

func (s *State) dropTask(id string) {
	ix := s.indexForWrite()
	if old, ok := s.Tasks[id]; ok {
		ix.remove(old)
		delete(s.Tasks, id)
	}
}

func (s *State) indexForWrite() *taskIndex {
	if s.tasksByApp == nil || s.tasksByApp.count != len(s.Tasks) {
		s.Reindex()
	}
	return s.tasksByApp
}

// indexReady reports whether the index is there and in step with Tasks.
func (s *State) indexReady() bool {
	return s.tasksByApp != nil && s.tasksByApp.count == len(s.Tasks)
}

// TasksOf returns the app's tasks sorted by id.
func (s *State) TasksOf(appID string) []Task {
	if !s.indexReady() {
		return s.scanTasks(func(t Task) bool { return t.AppID == appID })
	}
	return s.tasksIn(s.tasksByApp.byApp[appID], func(t Task) bool { return t.AppID == appID })
}

// TasksOn returns the tasks placed on an agent, sorted by id.
func (s *State) TasksOn(agentID string) []Task {
	if !s.agentIndexReady() {
		return s.scanTasks(func(t Task) bool { return t.AgentID == agentID })
	}
	return s.tasksIn(s.tasksByApp.byAgent[agentID], func(t Task) bool { return t.AgentID == agentID })
}

// CountsOf is how many of the app's tasks are staged, running, healthy and
// unhealthy.
func (s *State) CountsOf(appID string) TaskCounts {
	if !s.agentIndexReady() {
		var c TaskCounts
		for _, t := range s.Tasks {
			if t.AppID == appID {
				c.change(t, 1)
			}
		}
		return c
	}
	if c := s.tasksByApp.counts[appID]; c != nil {
		return *c
	}
	return TaskCounts{}
}

// EachTaskOn calls fn with each task on the agent, in no set order and
// without building a list: for sums over an agent's tasks, which the
// scheduler makes for every agent a launch touched.
func (s *State) EachTaskOn(agentID string, fn func(Task)) {
	if !s.agentIndexReady() {
		for _, t := range s.Tasks {
			if t.AgentID == agentID {
				fn(t)
			}
		}
		return
	}
	for id := range s.tasksByApp.byAgent[agentID] {
		if t, ok := s.Tasks[id]; ok && t.AgentID == agentID {
			fn(t)
		}
	}
}

// CountTasksOn is len(TasksOn(agentID)) without building the list.
func (s *State) CountTasksOn(agentID string) int {
	if !s.agentIndexReady() {
		return len(s.TasksOn(agentID))
	}
	return len(s.tasksByApp.byAgent[agentID])
}

// CountTasksOf is len(TasksOf(appID)) without building the list.
func (s *State) CountTasksOf(appID string) int {
	if !s.indexReady() {
		return len(s.TasksOf(appID))
	}
	return len(s.tasksByApp.byApp[appID])
}

func (s *State) tasksIn(ids map[string]struct{}, keep func(Task) bool) []Task {
	// Sort the ids, not the records: a task is hundreds of bytes.
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	out := make([]Task, 0, len(sorted))
	for _, id := range sorted {
		if t, ok := s.Tasks[id]; ok && keep(t) {
			out = append(out, t)
		}
	}
	return out
}

func (s *State) scanTasks(keep func(Task) bool) []Task {
	var out []Task
	for _, t := range s.Tasks {
		if keep(t) {
			out = append(out, t)
		}
	}
	sortTasks(out)
	return out
}

func sortTasks(ts []Task) {
	slices.SortFunc(ts, func(a, b Task) int { return strings.Compare(a.ID, b.ID) })
}

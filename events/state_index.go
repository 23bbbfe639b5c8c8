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
	byApp map[string]map[string]struct{}
	count int
}

func buildTaskIndex(tasks map[string]Task) *taskIndex {
	ix := &taskIndex{byApp: map[string]map[string]struct{}{}}
	for id, t := range tasks {
		ix.add(t.AppID, id)
	}
	return ix
}

func (ix *taskIndex) add(appID, taskID string) {
	ids := ix.byApp[appID]
	if ids == nil {
		ids = map[string]struct{}{}
		ix.byApp[appID] = ids
	}
	if _, ok := ids[taskID]; !ok {
		ids[taskID] = struct{}{}
		ix.count++
	}
}

func (ix *taskIndex) remove(appID, taskID string) {
	ids := ix.byApp[appID]
	if _, ok := ids[taskID]; !ok {
		return
	}
	delete(ids, taskID)
	ix.count--
	if len(ids) == 0 {
		delete(ix.byApp, appID)
	}
}

// Reindex rebuilds the app → tasks index; call it after writing Tasks
// other than through Apply (a state assembled by hand or decoded).
func (s *State) Reindex() { s.tasksByApp = buildTaskIndex(s.Tasks) }

// putTask and dropTask are Apply's only writes of Tasks; they keep the
// index in step, building it first when it is missing or out of step.
func (s *State) putTask(t Task) {
	ix := s.indexForWrite()
	if old, ok := s.Tasks[t.ID]; ok {
		ix.remove(old.AppID, old.ID)
	}
	s.Tasks[t.ID] = t
	ix.add(t.AppID, t.ID)
}

func (s *State) dropTask(id string) {
	ix := s.indexForWrite()
	if old, ok := s.Tasks[id]; ok {
		ix.remove(old.AppID, id)
		delete(s.Tasks, id)
	}
}

func (s *State) indexForWrite() *taskIndex {
	if s.tasksByApp == nil || s.tasksByApp.count != len(s.Tasks) {
		s.Reindex()
	}
	return s.tasksByApp
}

// taskIDsOf is the ids of appID's tasks from the index, or ok false when
// the index is missing or out of step with Tasks.
func (s *State) taskIDsOf(appID string) (map[string]struct{}, bool) {
	ix := s.tasksByApp
	if ix == nil || ix.count != len(s.Tasks) {
		return nil, false
	}
	return ix.byApp[appID], true
}

// TasksOf returns the app's tasks sorted by id.
func (s *State) TasksOf(appID string) []Task {
	var out []Task
	if ids, ok := s.taskIDsOf(appID); ok {
		out = make([]Task, 0, len(ids))
		for id := range ids {
			if t, ok := s.Tasks[id]; ok && t.AppID == appID {
				out = append(out, t)
			}
		}
	} else {
		for _, t := range s.Tasks {
			if t.AppID == appID {
				out = append(out, t)
			}
		}
	}
	slices.SortFunc(out, func(a, b Task) int { return strings.Compare(a.ID, b.ID) })
	return out
}

package events

import "time"

// An app's last task failure, as Marathon's lastTaskFailure shows it: the
// last task of the app that ended in failure, and when. It is kept in the
// state, derived from the TaskUpdated events themselves, so it survives a
// restart and a change of leader as Marathon's does (its
// TaskFailureRepository), and it goes with its app.

// TaskFailure is the task that failed as it ended, and when.
type TaskFailure struct {
	Task      Task      `json:"task"`
	Timestamp time.Time `json:"timestamp"`
}

// Failed says whether a task that ends in s failed, as Marathon's
// TaskFailure counts them (a kill or a finish is not a failure).
func (s TaskState) Failed() bool {
	switch s {
	case TaskFailed, TaskError, TaskLost, TaskGone:
		return true
	}
	return false
}

// noteFailure keeps e's task as its app's last failure if it failed.
func (s *State) noteFailure(e Event) {
	if e.Task == nil || !e.Task.State.Failed() {
		return
	}
	if s.AppFailures == nil {
		s.AppFailures = map[string]TaskFailure{}
	}
	s.AppFailures[e.Task.AppID] = TaskFailure{Task: *e.Task, Timestamp: e.Time}
}

package events

import (
	"reflect"
	"testing"
	"time"
)

func taskIDs(ts []Task) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func TestTasksOfFollowsEveryWayTasksChange(t *testing.T) {
	now := time.Unix(1700000000, 0).UTC()
	put := func(id, app string, st TaskState) Change {
		return PutTask(Task{ID: id, AppID: app, AgentID: "a1", State: st})
	}
	tests := []struct {
		name   string
		change func(s *State)
		app    string
		want   []string
	}{
		{"through Apply", func(s *State) {}, "/web", []string{"web.1", "web.2"}},
		{"a terminal update removes", func(s *State) { apply(t, s, now, put("web.1", "/web", TaskKilled)) }, "/web", []string{"web.2"}},
		{"TaskRemoved removes", func(s *State) { apply(t, s, now, DeleteTask("web.2")) }, "/web", []string{"web.1"}},
		{"an update keeps one entry", func(s *State) { apply(t, s, now, put("web.1", "/web", TaskKilling)) }, "/web", []string{"web.1", "web.2"}},
		{"a staging task", func(s *State) { apply(t, s, now, put("web.1", "/web", TaskStaging)) }, "/web", []string{"web.1", "web.2"}},
		{"a healthy verdict", func(s *State) {
			healthy := true
			apply(t, s, now, PutTask(Task{ID: "web.1", AppID: "/web", AgentID: "a1", State: TaskRunning, Healthy: &healthy}))
		}, "/web", []string{"web.1", "web.2"}},
		{"written directly, added", func(s *State) { s.Tasks["web.3"] = Task{ID: "web.3", AppID: "/web"} }, "/web", []string{"web.1", "web.2", "web.3"}},
		{"written directly, removed", func(s *State) { delete(s.Tasks, "web.1") }, "/web", []string{"web.2"}},
		{"a clone", func(s *State) { *s = *s.Clone() }, "/db", []string{"db.1"}},
		{"a clone without the index", func(s *State) { *s = *s.CloneUnindexed() }, "/web", []string{"web.1", "web.2"}},
		{"Apply on a clone without the index", func(s *State) {
			*s = *s.CloneUnindexed()
			apply(t, s, now, put("web.3", "/web", TaskRunning))
		}, "/web", []string{"web.1", "web.2", "web.3"}},
		{"an app without tasks", func(s *State) {}, "/none", []string{}},
		{"Apply after a direct write", func(s *State) {
			s.Tasks["web.3"] = Task{ID: "web.3", AppID: "/web"}
			apply(t, s, now, put("web.4", "/web", TaskRunning))
		}, "/web", []string{"web.1", "web.2", "web.3", "web.4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState()
			s.IndexByAgent() // as the master keeps it
			apply(t, s, now, put("web.2", "/web", TaskRunning), put("web.1", "/web", TaskRunning), put("db.1", "/db", TaskRunning))
			tt.change(s)
			if got := taskIDs(s.TasksOf(tt.app)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("TasksOf(%s) = %v, want %v", tt.app, got, tt.want)
			}
			// The counts follow the same changes as the lists.
			var want TaskCounts
			for _, task := range s.TasksOf(tt.app) {
				want.change(task, 1)
			}
			if got := s.CountsOf(tt.app); got != want {
				t.Errorf("CountsOf(%s) = %+v, want %+v", tt.app, got, want)
			}
			onA1 := 0
			for _, task := range s.Tasks {
				if task.AgentID == "a1" {
					onA1++
				}
			}
			if got := taskIDs(s.TasksOn("a1")); len(got) != onA1 {
				t.Errorf("TasksOn(a1) = %v, want the %d tasks placed there", got, onA1)
			}
		})
	}
}

func apply(t *testing.T, s *State, now time.Time, cs ...Change) {
	t.Helper()
	for _, c := range cs {
		if err := s.Apply(c.Stamp(s, 1, now)); err != nil {
			t.Fatal(err)
		}
	}
}

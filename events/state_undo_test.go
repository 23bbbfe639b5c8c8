package events_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// A leader that applied events its store then failed to keep takes them
// back: after reverting them, newest first, the state is the one before
// them, record for record, and its indexes answer as before.
func TestRevertRestoresTheStateBefore(t *testing.T) {
	s := base(t)
	s.IndexByAgent()
	web := s.Apps["/web"]
	apply(t, s, events.PutAppVersion(web))
	want := dump(t, s)
	a2 := eventstest.Agent("a2")
	killed := eventstest.Task("web.1", "/web", "a1", events.TaskKilled)
	moved := eventstest.Task("web.2", "/web", "a2", events.TaskStaging)
	changes := []events.Change{
		events.PutAgent(a2),
		events.PutApp(eventstest.App("/api", 3)),
		events.PutAppVersion(eventstest.App("/api", 3)),
		events.DeleteAppVersion("/web", web.Version),
		events.PutAppVersion(web),
		events.PutTask(moved),
		events.PutTask(killed), // terminal: drops web.1
		events.DeleteApp("/web"),
		events.PutDeployment(eventstest.Deployment("d2", "/api")),
		events.DeleteDeployment("d1"),
		events.PutLeader(events.Leader{ID: "m2", Hostname: "m2.test", IP: "10.0.0.8", Port: 8080, Epoch: 3}),
		events.DeleteAgent("a1"),
	}
	var undos []events.Undo
	for _, c := range changes {
		u, err := s.ApplyUndoable(c.Stamp(s, 3, eventstest.T0))
		if err != nil {
			t.Fatalf("apply %s: %v", c.Type, err)
		}
		undos = append(undos, u)
	}
	if len(s.TasksOn("a2")) != 1 || len(s.TasksOf("/web")) != 1 {
		t.Fatalf("before revert: tasks on a2 %v, of /web %v", s.TasksOn("a2"), s.TasksOf("/web"))
	}
	for i := len(undos) - 1; i >= 0; i-- {
		s.Revert(undos[i])
	}
	if got := dump(t, s); got != want {
		t.Errorf("after revert:\n%s\nwant:\n%s", got, want)
	}
	if on, of := s.TasksOn("a1"), s.TasksOf("/web"); len(on) != 1 || len(of) != 1 || on[0].ID != "web.1" || len(s.TasksOn("a2")) != 0 {
		t.Errorf("indexes after revert: on a1 %v, of /web %v, on a2 %v", on, of, s.TasksOn("a2"))
	}
	// The reverted state takes the next event as if nothing had happened.
	if _, err := s.ApplyUndoable(events.PutAgent(a2).Stamp(s, s.Epoch, eventstest.T0)); err != nil {
		t.Errorf("apply after revert: %v", err)
	}
}

func dump(t *testing.T, s *events.State) string {
	t.Helper()
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Group records are state like any other: applied, taken back, cloned.
func TestGroupEventsApplyAndRevert(t *testing.T) {
	s := events.NewState()
	g := events.Group{ID: "/prod", Dependencies: []string{"/db"}}
	u, err := s.ApplyUndoable(events.PutGroup(g).Stamp(s, 1, time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Clone().Groups["/prod"]; got.ID != "/prod" || len(got.Dependencies) != 1 {
		t.Fatalf("group after apply, in a clone: %+v", got)
	}
	s.Revert(u)
	if _, ok := s.Groups["/prod"]; ok || s.Seq != 0 {
		t.Fatalf("group after revert: %v, seq %d", s.Groups, s.Seq)
	}
	if err := s.Apply(events.PutGroup(g).Stamp(s, 1, time.Time{})); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(events.DeleteGroup("/prod").Stamp(s, 1, time.Time{})); err != nil || len(s.Groups) != 0 {
		t.Fatalf("after delete: %v %v", s.Groups, err)
	}
	if err := (&events.Event{Type: events.GroupUpdated, Seq: 1}).Validate(); err == nil {
		t.Fatal("a group event without a group validates")
	}
}

package events_test

import (
	"testing"

	"github.com/atollhq/atoll/events"
)

func TestSubjects(t *testing.T) {
	tests := []struct{ got, want string }{
		{events.Subjects{}.Event(events.TaskUpdated), "atoll.events.task_updated"},
		{events.Subjects{}.AllEvents(), "atoll.events.>"},
		{events.Subjects{Prefix: "x"}.Event(events.Sync), "x.events.sync"},
		{events.Subjects{Prefix: "x"}.Snapshot(), "x.state.snapshot"},
		{events.Subjects{}.Register("h1"), "atoll.master.agent.h1.register"},
		{events.Subjects{}.Heartbeat("H1.example.com"), "atoll.master.agent.h1_example_com.heartbeat"},
		{events.Subjects{}.Status("h1"), "atoll.master.agent.h1.status"},
		{events.Subjects{}.FromAgents(events.VerbStatus), "atoll.master.agent.*.status"},
		{events.Subjects{}.Launch("a1"), "atoll.agent.a1.launch"},
		{events.Subjects{}.Kill("a1.b"), "atoll.agent.a1_b.kill"},
		{events.Subjects{}.LBReport("n.1"), "atoll.lb.report.n_1"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("subject %q, want %q", tc.got, tc.want)
		}
	}
	s := events.Subjects{Prefix: "x.y"}
	for _, tc := range []struct {
		subject, node string
		ok            bool
	}{
		{s.Register("h1.a"), "h1_a", true},
		{s.Status("h2"), "h2", true},
		{"x.y.master.agent.h1.status.more", "", false},
		{"x.y.master.agent..status", "", false},
		{"atoll.master.agent.h1.status", "", false},
	} {
		if node, ok := s.AgentOf(tc.subject); node != tc.node || ok != tc.ok {
			t.Errorf("AgentOf(%q) = %q, %v; want %q, %v", tc.subject, node, ok, tc.node, tc.ok)
		}
	}
	for name, ok := range map[string]bool{"h1": true, "h1.example.com": true, "a-b": true, "a_b": false, "-a": false, "a..b": false, "": false, "a*": false, "a>": false} {
		if err := events.ValidNodeName(name); (err == nil) != ok {
			t.Errorf("ValidNodeName(%q) = %v", name, err)
		}
	}
	if !events.IsInbox("_INBOX.agent.h1.abc") || events.IsInbox("atoll.events.sync") || events.IsInbox("_INBOX.") {
		t.Error("IsInbox")
	}
}

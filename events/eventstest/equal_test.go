package eventstest

import (
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

func TestEqual(t *testing.T) {
	base := func() *events.State {
		l := NewLeader()
		l.Commit(events.PutAgent(Agent("a1")))
		l.Commit(events.PutApp(App("/web", 2)))
		l.Commit(events.PutTask(Task("web.1", "/web", "a1", events.TaskRunning)))
		l.Commit(events.PutDeployment(Deployment("d1", "/web")))
		return l.State()
	}
	tests := []struct {
		name   string
		change func(s *events.State)
		want   string // "" for equal
	}{
		{"same", func(s *events.State) {}, ""},
		{"same instant, other zone value", func(s *events.State) {
			a := s.Agents["a1"]
			a.RegisteredAt = a.RegisteredAt.In(time.FixedZone("UTC0", 0))
			s.Agents["a1"] = a
		}, ""},
		{"epoch", func(s *events.State) { s.Epoch = 9 }, "epoch: 1 != 9"},
		{"seq", func(s *events.State) { s.Seq = 9 }, "seq: 5 != 9"},
		{"no leader", func(s *events.State) { s.Leader = nil }, "leader: "},
		{"leader field", func(s *events.State) { s.Leader = &events.Leader{ID: "x", Epoch: 1} }, "leader.hostname: "},
		{"extra agent", func(s *events.State) { s.Agents["a0"] = Agent("a0") }, `agents["a0"]: only in the second state`},
		{"missing app", func(s *events.State) { delete(s.Apps, "/web") }, `apps["/web"]: only in the first state`},
		{"task state", func(s *events.State) {
			s.Tasks["web.1"] = Task("web.1", "/web", "a1", events.TaskStaging)
		}, `tasks["web.1"].state: "TASK_RUNNING" != "TASK_STAGING"`},
		{"time", func(s *events.State) {
			a := s.Apps["/web"]
			a.Version = a.Version.Add(time.Second)
			s.Apps["/web"] = a
		}, `apps["/web"].version: "2024-01-01T00:00:00Z" != "2024-01-01T00:00:01Z"`},
		{"nested slice", func(s *events.State) {
			a := s.Agents["a1"]
			a.Resources.Ports = append([]events.PortRange{}, a.Resources.Ports...)
			a.Resources.Ports[0].End = 1
			s.Agents["a1"] = a
		}, `agents["a1"].resources.ports[0].end: 32000 != 1`},
		{"longer slice", func(s *events.State) {
			t := Task("web.1", "/web", "a1", events.TaskRunning)
			t.Ports = []int{31000, 31001}
			s.Tasks["web.1"] = t
		}, `tasks["web.1"].ports: length 1 != 2`},
		{"new field", func(s *events.State) {
			a := s.Apps["/web"]
			a.User = "nobody"
			s.Apps["/web"] = a
		}, `apps["/web"].user: only in the second state`},
		{"deployment", func(s *events.State) { s.Deployments["d1"] = Deployment("d1", "/api") }, `deployments["d1"].affectedApps[0]: "/web" != "/api"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base(), base()
			tc.change(b)
			err := Equal(a, b)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Equal = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Errorf("Equal = %v, want %q", err, tc.want)
			}
		})
	}
	if err := Equal(nil, nil); err != nil {
		t.Errorf("Equal(nil, nil) = %v", err)
	}
	if err := Equal(base(), nil); err == nil {
		t.Errorf("Equal(state, nil) = nil")
	}
}

func TestLeader(t *testing.T) {
	l := NewLeader()
	var got []events.Event
	stop, _ := l.Subscribe(func(e events.Event, _ []byte) { got = append(got, e) })

	l.Commit(events.PutAgent(Agent("a1")))
	l.DropNext()
	l.Commit(events.PutAgent(Agent("a2")))
	l.Tick()
	l.NewEpoch()
	l.Inject(events.Event{Epoch: 1, Seq: 1, Type: events.Sync})
	stop()
	l.Commit(events.DeleteAgent("a1"))

	var ids []string
	for _, e := range got {
		ids = append(ids, e.SSEID()+" "+string(e.Type))
	}
	want := "1-2 agent_updated,1-3 sync,2-4 leader_changed,1-1 sync"
	if s := strings.Join(ids, ","); s != want {
		t.Errorf("delivered %s, want %s", s, want)
	}

	st := l.State()
	if st.Epoch != 2 || st.Seq != 5 || len(st.Agents) != 1 || st.Leader.ID != "master-2" {
		t.Errorf("state %d-%d agents %v leader %+v", st.Epoch, st.Seq, st.Agents, st.Leader)
	}
	snap, err := l.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	delete(snap.State.Agents, "a2")
	if len(l.State().Agents) != 1 {
		t.Errorf("changing a snapshot changed the leader")
	}
	if l.Snapshots() != 1 {
		t.Errorf("Snapshots() = %d, want 1", l.Snapshots())
	}
}

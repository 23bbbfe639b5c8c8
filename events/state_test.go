package events_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// base is a state at (2, 10) holding one record of every kind.
func base(t *testing.T) *events.State {
	t.Helper()
	s := events.NewState()
	s.Epoch, s.Seq = 2, 9
	apply(t, s, events.PutLeader(events.Leader{ID: "m1", Hostname: "m1.test", IP: "10.0.0.9", Port: 8080, Epoch: 2}))
	s.Agents["a1"] = eventstest.Agent("a1")
	s.Apps["/web"] = eventstest.App("/web", 2)
	s.Tasks["web.1"] = eventstest.Task("web.1", "/web", "a1", events.TaskRunning)
	s.Deployments["d1"] = eventstest.Deployment("d1", "/web")
	return s
}

// apply stamps c as the event that follows s and applies it.
func apply(t *testing.T, s *events.State, c events.Change) events.Event {
	t.Helper()
	e := c.Stamp(s, s.Epoch, eventstest.T0)
	if err := s.Apply(e); err != nil {
		t.Fatalf("apply %s: %v", e.Type, err)
	}
	return e
}

// next makes the event that follows base's (2, 10).
func next(c events.Change) events.Event {
	return c.Stamp(&events.State{Seq: 10}, 2, eventstest.T0)
}

func TestApply(t *testing.T) {
	errInvalid := errors.New("invalid event") // any error but ErrOutOfOrder

	agent2 := eventstest.Agent("a1")
	agent2.State = events.AgentUnreachable
	app2 := eventstest.App("/web", 5)
	staging := eventstest.Task("web.2", "/web", "a1", events.TaskStaging)
	dep2 := eventstest.Deployment("d2", "/api")
	leader3 := events.Leader{ID: "m2", Hostname: "m2.test", IP: "10.0.0.8", Port: 8080, Epoch: 3}

	at := func(epoch, seq uint64, c events.Change) events.Event {
		e := next(c)
		e.Epoch, e.Seq = epoch, seq
		return e
	}

	tests := []struct {
		name    string
		event   events.Event
		wantErr error
		// want changes a copy of the state before into the state expected
		// after; the expected (epoch, seq) are the event's.
		want func(s *events.State)
	}{
		{name: "agent added", event: next(events.PutAgent(eventstest.Agent("a2"))),
			want: func(s *events.State) { s.Agents["a2"] = eventstest.Agent("a2") }},
		{name: "agent replaced", event: next(events.PutAgent(agent2)),
			want: func(s *events.State) { s.Agents["a1"] = agent2 }},
		{name: "agent removed", event: next(events.DeleteAgent("a1")),
			want: func(s *events.State) { delete(s.Agents, "a1") }},
		{name: "unknown agent removed", event: next(events.DeleteAgent("nope")),
			want: func(s *events.State) {}},
		{name: "app added", event: next(events.PutApp(eventstest.App("/api", 1))),
			want: func(s *events.State) { s.Apps["/api"] = eventstest.App("/api", 1) }},
		{name: "app replaced", event: next(events.PutApp(app2)),
			want: func(s *events.State) { s.Apps["/web"] = app2 }},
		{name: "app removed", event: next(events.DeleteApp("/web")),
			want: func(s *events.State) { delete(s.Apps, "/web") }},
		{name: "task added", event: next(events.PutTask(staging)),
			want: func(s *events.State) { s.Tasks["web.2"] = staging }},
		{name: "task killing", event: next(events.PutTask(eventstest.Task("web.1", "/web", "a1", events.TaskKilling))),
			want: func(s *events.State) { s.Tasks["web.1"] = eventstest.Task("web.1", "/web", "a1", events.TaskKilling) }},
		{name: "task unreachable is kept", event: next(events.PutTask(eventstest.Task("web.1", "/web", "a1", events.TaskUnreachable))),
			want: func(s *events.State) {
				s.Tasks["web.1"] = eventstest.Task("web.1", "/web", "a1", events.TaskUnreachable)
			}},
		{name: "task removed", event: next(events.DeleteTask("web.1")),
			want: func(s *events.State) { delete(s.Tasks, "web.1") }},
		{name: "deployment added", event: next(events.PutDeployment(dep2)),
			want: func(s *events.State) { s.Deployments["d2"] = dep2 }},
		{name: "deployment removed", event: next(events.DeleteDeployment("d1")),
			want: func(s *events.State) { delete(s.Deployments, "d1") }},
		{name: "leader changed in a new epoch", event: at(3, 11, events.PutLeader(leader3)),
			want: func(s *events.State) { s.Leader = &leader3 }},
		{name: "any event may open a new epoch", event: at(5, 11, events.DeleteTask("web.1")),
			want: func(s *events.State) { delete(s.Tasks, "web.1") }},

		{name: "gap", event: at(2, 12, events.DeleteTask("web.1")), wantErr: events.ErrOutOfOrder},
		{name: "duplicate", event: at(2, 10, events.DeleteTask("web.1")), wantErr: events.ErrOutOfOrder},
		{name: "older seq", event: at(2, 3, events.DeleteTask("web.1")), wantErr: events.ErrOutOfOrder},
		{name: "older epoch", event: at(1, 11, events.DeleteTask("web.1")), wantErr: events.ErrOutOfOrder},
		{name: "new epoch with a gap", event: at(3, 12, events.PutLeader(leader3)), wantErr: events.ErrOutOfOrder},
		{name: "new epoch restarting seq", event: at(3, 1, events.PutLeader(leader3)), wantErr: events.ErrOutOfOrder},

		{name: "sync tick", event: events.Event{Epoch: 2, Seq: 11, Type: events.Sync}, wantErr: errInvalid},
		{name: "unknown type", event: events.Event{Epoch: 2, Seq: 11, Type: "task_exploded", ID: "web.1"}, wantErr: errInvalid},
		{name: "no type", event: events.Event{Epoch: 2, Seq: 11, ID: "web.1"}, wantErr: errInvalid},
		{name: "agent without payload", event: events.Event{Epoch: 2, Seq: 11, Type: events.AgentUpdated, ID: "a1"}, wantErr: errInvalid},
		{name: "agent without id", event: next(events.PutAgent(events.Agent{Hostname: "x"})), wantErr: errInvalid},
		{name: "app without payload", event: events.Event{Epoch: 2, Seq: 11, Type: events.AppUpdated, ID: "/web"}, wantErr: errInvalid},
		{name: "task without payload", event: events.Event{Epoch: 2, Seq: 11, Type: events.TaskUpdated, ID: "web.1"}, wantErr: errInvalid},
		{name: "deployment without payload", event: events.Event{Epoch: 2, Seq: 11, Type: events.DeploymentUpdated, ID: "d1"}, wantErr: errInvalid},
		{name: "leader without payload", event: events.Event{Epoch: 3, Seq: 11, Type: events.LeaderChanged, ID: "m2"}, wantErr: errInvalid},
		{name: "removal without id", event: next(events.DeleteApp("")), wantErr: errInvalid},
		{name: "invalid and out of order", event: events.Event{Epoch: 2, Seq: 99, Type: events.TaskRemoved}, wantErr: errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := base(t)
			before := s.Clone()
			err := s.Apply(tc.event)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Apply: %v", err)
			case tc.wantErr == events.ErrOutOfOrder && !errors.Is(err, events.ErrOutOfOrder):
				t.Fatalf("Apply = %v, want ErrOutOfOrder", err)
			case tc.wantErr == errInvalid && (err == nil || errors.Is(err, events.ErrOutOfOrder)):
				t.Fatalf("Apply = %v, want a validation error", err)
			}
			want := before
			if tc.wantErr == nil {
				want = before.Clone()
				tc.want(want)
				want.Epoch, want.Seq = tc.event.Epoch, tc.event.Seq
			}
			if err := eventstest.Equal(s, want); err != nil {
				t.Errorf("state after Apply (got, want): %v", err)
			}
		})
	}
}

// A terminal TaskUpdated removes the task, whatever the terminal state,
// and is accepted for a task the state never had.
func TestApplyTerminalTaskRemoves(t *testing.T) {
	for _, st := range []events.TaskState{
		events.TaskFinished, events.TaskFailed, events.TaskKilled,
		events.TaskLost, events.TaskError, events.TaskGone,
	} {
		t.Run(string(st), func(t *testing.T) {
			s := base(t)
			apply(t, s, events.PutTask(eventstest.Task("web.1", "/web", "a1", st)))
			if _, ok := s.Tasks["web.1"]; ok {
				t.Errorf("task web.1 still in the state after %s", st)
			}
			apply(t, s, events.PutTask(eventstest.Task("web.9", "/web", "a1", st)))
			if len(s.Tasks) != 0 || s.Seq != 12 {
				t.Errorf("tasks %v at seq %d, want none at seq 12", s.Tasks, s.Seq)
			}
		})
	}
}

// The state keeps its own copy of a record: changing the event's record
// afterwards does not reach it.
func TestApplyCopiesRecords(t *testing.T) {
	s := base(t)
	app := eventstest.App("/api", 1)
	e := next(events.PutApp(app))
	if err := s.Apply(e); err != nil {
		t.Fatal(err)
	}
	e.App.Instances = 99
	if got := s.Apps["/api"].Instances; got != 1 {
		t.Errorf("instances = %d after changing the event, want 1", got)
	}
}

func TestCloneSharesNoMaps(t *testing.T) {
	for name, clone := range map[string]func(*events.State) *events.State{
		"Clone": (*events.State).Clone, "CloneUnindexed": (*events.State).CloneUnindexed,
	} {
		t.Run(name, func(t *testing.T) {
			s := base(t)
			c := clone(s)
			if err := eventstest.Equal(s, c); err != nil {
				t.Fatalf("clone differs: %v", err)
			}
			apply(t, c, events.DeleteAgent("a1"))
			apply(t, c, events.DeleteApp("/web"))
			apply(t, c, events.DeleteTask("web.1"))
			apply(t, c, events.DeleteDeployment("d1"))
			c.Leader.ID = "changed"
			if err := eventstest.Equal(s, base(t)); err != nil {
				t.Errorf("changing the clone changed the original: %v", err)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	s := (&events.State{Epoch: 1, Seq: 1}).Normalize()
	if s.Agents == nil || s.Apps == nil || s.Tasks == nil || s.Deployments == nil {
		t.Fatalf("Normalize left a nil map: %+v", s)
	}
	if err := s.Apply(events.PutAgent(eventstest.Agent("a1")).Stamp(s, 1, eventstest.T0)); err != nil {
		t.Errorf("Apply on a normalized state: %v", err)
	}
}

func TestStamp(t *testing.T) {
	s := base(t)
	e := events.PutTask(eventstest.Task("web.2", "/web", "a1", events.TaskStaging)).Stamp(s, 4, eventstest.T0)
	if e.Epoch != 4 || e.Seq != 11 || e.Type != events.TaskUpdated || e.ID != "web.2" || e.Task == nil || !e.Time.Equal(eventstest.T0) {
		t.Errorf("Stamp = %+v, want task_updated web.2 at 4-11", e)
	}
	if got := e.SSEID(); got != "4-11" {
		t.Errorf("SSEID = %q, want 4-11", got)
	}
}

// TestApplyScripts runs testdata/*.txt: one JSON event per line (blank
// lines and lines starting with # are skipped), applied in order to an
// empty state. The output lists the events Apply rejected, then the final
// state as sorted JSON; it must match the .golden file next to the script.
// go test ./events -run ApplyScripts -update rewrites the golden files.
func TestApplyScripts(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts in testdata: %v", err)
	}
	for _, script := range scripts {
		name := strings.TrimSuffix(filepath.Base(script), ".txt")
		t.Run(name, func(t *testing.T) {
			got := runScript(t, script)
			golden := strings.TrimSuffix(script, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s: output differs from %s (run with -update to accept)\n--- got\n%s--- want\n%s", script, golden, got, want)
			}
		})
	}
}

func runScript(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s := events.NewState()
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := events.DecodeEvent([]byte(line))
		if err == nil {
			before := s.Clone()
			if err = s.Apply(e); err != nil {
				if diff := eventstest.Equal(s, before); diff != nil {
					t.Errorf("line %d: rejected event changed the state: %v", n, diff)
				}
			}
		}
		if err != nil {
			fmt.Fprintf(&out, "line %d: %v\n", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	out.WriteString(eventstest.Dump(s))
	return out.String()
}

// TestApplySharesTaskStrings: a decoded task's state and address protocol
// are the constants, not strings of their own.
func TestApplySharesTaskStrings(t *testing.T) {
	s := events.NewState()
	for _, c := range []events.Change{
		events.PutAgent(eventstest.Agent("a1")),
		events.PutTask(eventstest.Task("t1", "/app", "a1", events.TaskRunning)),
	} {
		data, err := json.Marshal(c.Stamp(s, 1, eventstest.T0))
		if err != nil {
			t.Fatal(err)
		}
		e, err := events.DecodeEvent(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	task := s.Tasks["t1"]
	if unsafe.StringData(string(task.State)) != unsafe.StringData(string(events.TaskRunning)) {
		t.Errorf("task state %s is a copy", task.State)
	}
	if p := task.IPAddresses[0].Protocol; unsafe.StringData(p) != unsafe.StringData("IPv4") {
		t.Errorf("address protocol %s is a copy", p)
	}
}

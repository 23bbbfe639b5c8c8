package master

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// zkAppend stamps each change onto st in epoch, appends it to s and
// applies it, as commitLocked does.
func zkAppend(t *testing.T, s Store, st *events.State, epoch uint64, changes ...events.Change) {
	t.Helper()
	for _, c := range changes {
		e := c.Stamp(st, epoch, eventstest.T0.Add(time.Duration(st.Seq+1)*time.Second))
		if _, err := s.AppendAll([]events.Event{e}); err != nil {
			t.Fatalf("append %s %s: %v", e.Type, e.ID, err)
		}
		if err := st.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
}

func newTestZKStore(t *testing.T, root, owner string) *ZKStore {
	t.Helper()
	return NewZKStore(zkConnect(t, testZK(t).Servers), ZKStoreConfig{Root: root, Owner: owner})
}

func load(t *testing.T, s Store) *events.State {
	t.Helper()
	st, err := s.Load()
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return st
}

func TestZKStoreRoundTrip(t *testing.T) {
	leader := events.Leader{ID: "m1", Hostname: "m1.test", IP: "127.0.0.1", Port: 8080, Epoch: 1}
	for _, tc := range []struct {
		name    string
		changes []events.Change
	}{
		{"empty", nil},
		{"every record", []events.Change{
			events.PutLeader(leader),
			events.PutAgent(eventstest.Agent("agent-1")),
			events.PutApp(eventstest.App("/web/frontend", 2)),
			events.PutAppVersion(eventstest.App("/web/frontend", 2)),
			events.PutAppVersion(versionOf(eventstest.App("/web/frontend", 3), time.Second)),
			events.PutApp(eventstest.App("/..", 1)), // an id that is no znode name as it is
			events.PutTask(eventstest.Task("web_frontend.1", "/web/frontend", "agent-1", events.TaskStaging)),
			events.PutTask(eventstest.Task("web_frontend.1", "/web/frontend", "agent-1", events.TaskRunning)),
			events.PutDeployment(eventstest.Deployment("dep-1", "/web/frontend")),
			events.PutGroup(events.Group{ID: "/web", Dependencies: []string{"/db"}, Version: eventstest.T0}),
		}},
		{"deletes", []events.Change{
			events.PutAgent(eventstest.Agent("agent-1")),
			events.PutAgent(eventstest.Agent("agent-2")),
			events.PutApp(eventstest.App("/a", 1)),
			events.PutApp(eventstest.App("/b", 1)),
			events.PutAppVersion(eventstest.App("/a", 1)),
			events.PutAppVersion(versionOf(eventstest.App("/a", 2), time.Second)),
			events.PutAppVersion(versionOf(eventstest.App("/a", 3), 2*time.Second)),
			events.PutAppVersion(eventstest.App("/b", 1)),
			events.DeleteAppVersion("/a", versionOf(eventstest.App("/a", 2), time.Second).Version),
			events.DeleteAppVersion("/b", eventstest.App("/b", 1).Version),
			events.PutTask(eventstest.Task("a.1", "/a", "agent-1", events.TaskRunning)),
			events.PutTask(eventstest.Task("a.2", "/a", "agent-1", events.TaskRunning)),
			events.PutTask(eventstest.Task("b.1", "/b", "agent-2", events.TaskRunning)),
			events.PutDeployment(eventstest.Deployment("dep-1", "/a")),
			events.DeleteAgent("agent-2"),
			events.DeleteApp("/b"),
			events.DeleteTask("b.1"),
			events.PutTask(eventstest.Task("a.2", "/a", "agent-1", events.TaskFailed)), // terminal: leaves, the app's last failure
			events.PutTask(eventstest.Task("b.2", "/b", "agent-1", events.TaskStaging)),
			events.PutTask(eventstest.Task("b.2", "/b", "agent-1", events.TaskLost)), // /b's failure, gone with /b below
			events.PutApp(eventstest.App("/b", 1)),
			events.DeleteApp("/b"),
			events.DeleteDeployment("dep-1"),
			events.DeleteTask("never-was"),
			events.PutGroup(events.Group{ID: "/gone"}),
			events.PutGroup(events.Group{ID: "/kept"}),
			events.DeleteGroup("/gone"),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := zkRoot(t)
			s := newTestZKStore(t, root, "m1")
			st := load(t, s)
			zkAppend(t, s, st, st.Epoch+1, tc.changes...)
			got := load(t, newTestZKStore(t, root, "m2"))
			if err := eventstest.Equal(got, st); err != nil {
				t.Fatalf("loaded state differs from the appended one: %v", err)
			}
		})
	}
}

// TestZKStoreLarge stores more than one znode (or getChildren reply) could
// hold and loads it back.
func TestZKStoreLarge(t *testing.T) {
	root := zkRoot(t)
	s := newTestZKStore(t, root, "m1")
	st := load(t, s)
	const apps, tasks = 4, 3000
	var changes []events.Change
	for a := range apps {
		app := eventstest.App(fmt.Sprintf("/big/app%d", a), tasks/apps)
		app.Cmd = strings.Repeat("x", 2000)
		changes = append(changes, events.PutApp(app))
	}
	for i := range tasks {
		changes = append(changes, events.PutTask(eventstest.Task(
			fmt.Sprintf("big_app%d.%08d-aaaa-bbbb-cccc-dddddddddddd", i%apps, i),
			fmt.Sprintf("/big/app%d", i%apps), "agent-1", events.TaskRunning)))
	}
	start := time.Now()
	zkAppend(t, s, st, 1, changes...)
	t.Logf("%d appends in %s", len(changes), time.Since(start))
	start = time.Now()
	got := load(t, newTestZKStore(t, root, "m2"))
	t.Logf("load of %d tasks in %s", len(got.Tasks), time.Since(start))
	if err := eventstest.Equal(got, st); err != nil {
		t.Fatal(err)
	}
	if len(got.TasksOf("/big/app1")) != tasks/apps {
		t.Fatalf("task index: %d tasks of /big/app1", len(got.TasksOf("/big/app1")))
	}
}

func TestZKStoreFencing(t *testing.T) {
	root := zkRoot(t)
	old := newTestZKStore(t, root, "old")
	var lost []error
	old.bind(old.conn, func(err error) { lost = append(lost, err) })
	st := load(t, old)
	zkAppend(t, old, st, 1, events.PutApp(eventstest.App("/a", 1)))

	// A newer leader takes over; the old one does not know yet.
	newer := newTestZKStore(t, root, "new")
	taken := load(t, newer)
	if err := eventstest.Equal(taken, st); err != nil {
		t.Fatalf("new leader loaded: %v", err)
	}

	for i, c := range []events.Change{
		events.PutApp(eventstest.App("/b", 1)),
		events.DeleteApp("/a"), // refused without asking ZooKeeper
	} {
		e := c.Stamp(st, 1, eventstest.T0)
		n, err := old.AppendAll([]events.Event{e})
		if n != 0 {
			t.Fatalf("stale append %d: %d events stored", i, n)
		}
		if !errors.Is(err, ErrFenced) || !errors.Is(err, ErrNotLeader) {
			t.Fatalf("stale append %d: err %v, want ErrFenced", i, err)
		}
	}
	if len(lost) != 1 || !errors.Is(lost[0], ErrFenced) {
		t.Fatalf("lost callback got %v, want one ErrFenced", lost)
	}

	// Nothing of the stale writes landed: not the record, not the counter.
	zkAppend(t, newer, taken, taken.Epoch+1, events.PutApp(eventstest.App("/c", 1)))
	got := load(t, newTestZKStore(t, root, "reader"))
	if err := eventstest.Equal(got, taken); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Apps["/b"]; ok {
		t.Fatal("the fenced write of /b landed")
	}
}

// TestZKStoreTakeoverRace: of two stores that read the same leader_epoch
// version, only one can take over.
func TestZKStoreTakeoverRace(t *testing.T) {
	root := zkRoot(t)
	a := newTestZKStore(t, root, "a")
	load(t, a)
	b := newTestZKStore(t, root, "b")
	if err := b.ensureLayout(); err != nil {
		t.Fatal(err)
	}
	_, stat, err := b.conn.Get(b.epochPath())
	if err != nil {
		t.Fatal(err)
	}
	load(t, a) // a takes over again in between
	if _, err := b.conn.Set(b.epochPath(), nil, stat.Version); !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("set at a stale version: %v, want ErrBadVersion", err)
	}
}

func TestEscapeID(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"/web/frontend", "%2Fweb%2Ffrontend"},
		{"web_frontend.0b1c-22", "web_frontend.0b1c-22"},
		{".", "%2E"},
		{"..", "%2E%2E"},
		{"...", "..."},
		{"a b%c", "a%20b%25c"},
		{"a@1", "a%401"}, // @ separates a record's id from its version
		{"zookeeper", "zookeeper"},
	} {
		if got := escapeID(tc.id); got != tc.want {
			t.Errorf("escapeID(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

// versionOf is app a at its version plus d: another version of it.
func versionOf(a events.App, d time.Duration) events.App {
	a.Version = a.Version.Add(d)
	return a
}

package master

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// masterOnFileStore is a master that leads on a clock of the test's, its
// state in a local store in dir, with no loops running.
func masterOnFileStore(t *testing.T, dir string, clock *manualClock, ns *eventstest.NATS) (*Master, *FileStore) {
	t.Helper()
	fs, err := OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{
		NC: eventstest.Connect(t, ns), Store: fs,
		AgentTimeout: 15 * time.Second, Now: clock.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	establishForTest(t, m)
	return m, fs
}

// groupVersions is GET /v2/groups/{id}/versions, newest first.
func groupVersions(t *testing.T, h http.Handler, id string) []string {
	t.Helper()
	var out []string
	res := call(t, h, "GET", "/v2/groups"+id+"/versions", "")
	if err := json.Unmarshal(res.body, &out); err != nil {
		t.Fatalf("versions of %s: %d %s", id, res.status, res.body)
	}
	return out
}

// cmdOf is the app's cmd over the API, "" when there is no such app.
func cmdOf(t *testing.T, h http.Handler, id string) string {
	t.Helper()
	res := call(t, h, "GET", "/v2/apps"+id, "")
	if res.status == http.StatusNotFound {
		return ""
	}
	cmd, _ := at(t, res.json(t), "app", "cmd").(string)
	return cmd
}

// activeTasks counts the app's tasks that are not being killed.
func activeTasks(m *Master, appID string) int {
	return len(tasksIn(m, appID, events.TaskStaging)) + len(tasksIn(m, appID, events.TaskRunning))
}

// settle runs reconcile passes, every staged task reported running, until
// no deployment is left.
func settle(t *testing.T, m *Master, apps ...string) {
	t.Helper()
	for range 10 {
		reconcile(t, m)
		for _, a := range apps {
			runStaging(t, m, a, nil)
			for _, task := range tasksIn(m, a, events.TaskKilling) {
				setStatus(t, m, task.ID, events.TaskKilled) // as the agent reports a kill
			}
		}
		if _, ok := onlyDeployment(t, m); !ok {
			return
		}
	}
	d, _ := onlyDeployment(t, m)
	t.Fatalf("deployment %s did not finish: %+v", d.ID, d.CurrentActions)
}

// PUT /v2/groups/{id} {"version": V} puts a group back as it was at V,
// as Marathon does: apps changed since get their old definitions, apps
// removed since come back, apps added since go, in one deployment that
// the reconcile pass carries out; and it still can after a restart.
func TestGroupRollbackToAVersion(t *testing.T) {
	dir := t.TempDir()
	clock := &manualClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	ns := eventstest.StartNATS(t)
	m, fs := masterOnFileStore(t, dir, clock, ns)
	h := m.Handler()
	addAgent(t, m, "h1", "127.0.0.9")
	abc := []string{"/g/a", "/g/b", "/g/c"}

	res := call(t, h, "POST", "/v2/groups", `{"id": "/g", "apps": [
		{"id": "a", "cmd": "sleep 100", "cpus": 0.1, "mem": 16},
		{"id": "b", "cmd": "sleep 200", "cpus": 0.1, "mem": 16}]}`)
	if res.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.status, res.body)
	}
	settle(t, m, abc...)
	v1 := groupVersions(t, h, "/g")[0]

	clock.Advance(time.Second)
	res = call(t, h, "PUT", "/v2/groups/g", `{"id": "/g", "apps": [
		{"id": "a", "cmd": "sleep 101", "cpus": 0.1, "mem": 16},
		{"id": "c", "cmd": "sleep 300", "cpus": 0.1, "mem": 16}]}`)
	if res.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", res.status, res.body)
	}
	settle(t, m, abc...)
	v2 := groupVersions(t, h, "/g")[0]
	if cmdOf(t, h, "/g/b") != "" || cmdOf(t, h, "/g/c") != "sleep 300" || activeTasks(m, "/g/b") != 0 {
		t.Fatalf("after V2: b %q (%d tasks), c %q", cmdOf(t, h, "/g/b"), activeTasks(m, "/g/b"), cmdOf(t, h, "/g/c"))
	}

	// Refused, and nothing changes: a version the group never had, a
	// version with anything else (Marathon's validation), a bad one.
	before := seq(m)
	res = call(t, h, "PUT", "/v2/groups/g", `{"version": "2001-01-01T00:00:00.000Z"}`)
	if res.status != http.StatusUnprocessableEntity ||
		res.json(t)["message"] != "Group /g not available in version 2001-01-01T00:00:00.000Z" {
		t.Errorf("unknown version: %d %s", res.status, res.body)
	}
	for _, body := range []string{
		`{"version": "` + v1 + `", "apps": []}`,
		`{"id": "/g", "version": "` + v1 + `"}`,
		`{"version": "` + v1 + `", "scaleBy": 2}`,
	} {
		res = call(t, h, "PUT", "/v2/groups/g", body)
		if res.status != http.StatusUnprocessableEntity || at(t, res.json(t), "details", 0, "path") != "/version" ||
			at(t, res.json(t), "details", 0, "errors", 0) != "not allowed in conjunction with other properties." {
			t.Errorf("%s: %d %s", body, res.status, res.body)
		}
	}
	if res = call(t, h, "PUT", "/v2/groups/g", `{"version": "yesterday"}`); res.status != http.StatusUnprocessableEntity {
		t.Errorf("a version that is no time: %d %s", res.status, res.body)
	}
	if res = call(t, h, "POST", "/v2/groups", `{"id": "/new", "version": "`+v1+`"}`); res.status != http.StatusUnprocessableEntity {
		t.Errorf("POST of a group that is not there, with a version: %d %s", res.status, res.body)
	}
	if seq(m) != before {
		t.Fatal("a refused rollback changed the state")
	}

	// Back to V1: a's old cmd, b back, c gone; the tasks follow.
	clock.Advance(time.Second)
	res = call(t, h, "PUT", "/v2/groups/g", `{"version": "`+v1+`"}`)
	if res.status != http.StatusOK {
		t.Fatalf("rollback to %s: %d %s", v1, res.status, res.body)
	}
	namesItsDeployment(t, res)
	if a, b, c := cmdOf(t, h, "/g/a"), cmdOf(t, h, "/g/b"), cmdOf(t, h, "/g/c"); a != "sleep 100" || b != "sleep 200" || c != "" {
		t.Fatalf("after the rollback: a %q b %q c %q, want sleep 100, sleep 200, none", a, b, c)
	}
	settle(t, m, abc...)
	if activeTasks(m, "/g/a") != 1 || activeTasks(m, "/g/b") != 1 || activeTasks(m, "/g/c") != 0 {
		t.Fatalf("tasks after the rollback: a %d b %d c %d, want 1 1 0",
			activeTasks(m, "/g/a"), activeTasks(m, "/g/b"), activeTasks(m, "/g/c"))
	}
	m.View(func(s *events.State) {
		for _, task := range s.TasksOf("/g/a") {
			if task.State.Active() && task.State != events.TaskKilling && !task.ConfigVersion.Equal(s.Apps["/g/a"].VersionInfo.LastConfigChangeAt) {
				t.Errorf("a's task %s is of config %s, not the rolled back one", task.ID, task.ConfigVersion)
			}
		}
	})
	vs := groupVersions(t, h, "/g")
	if len(vs) != 3 || vs[1] != v2 || vs[2] != v1 || vs[0] <= v2 {
		t.Fatalf("versions after the rollback %v: want a new one before %s and %s", vs, v2, v1)
	}

	// The rollback survives a restart: the new master, from the same
	// store, rolls forward to V2, c's definition kept though c was gone.
	fs.Close()
	m2, _ := masterOnFileStore(t, dir, clock, ns)
	h2 := m2.Handler()
	if a, b := cmdOf(t, h2, "/g/a"), cmdOf(t, h2, "/g/b"); a != "sleep 100" || b != "sleep 200" {
		t.Fatalf("after the restart: a %q b %q", a, b)
	}
	clock.Advance(time.Second)
	res = call(t, h2, "PUT", "/v2/groups/g?force=true", `{"version": "`+v2+`"}`)
	if res.status != http.StatusOK {
		t.Fatalf("rollback to %s after the restart: %d %s", v2, res.status, res.body)
	}
	if a, b, c := cmdOf(t, h2, "/g/a"), cmdOf(t, h2, "/g/b"), cmdOf(t, h2, "/g/c"); a != "sleep 101" || b != "" || c != "sleep 300" {
		t.Fatalf("after the rollback to V2: a %q b %q c %q", a, b, c)
	}

	// The local store's snapshot (what compaction writes) keeps them too.
	var st *events.State
	m2.View(func(s *events.State) { st = s.CloneUnindexed() })
	if len(st.GroupVersions["/g"]) == 0 || len(st.KeptApps["/g/b"]) == 0 {
		t.Fatalf("group versions %v, kept apps %v", st.GroupVersions, st.KeptApps)
	}
	path := filepath.Join(t.TempDir(), "snapshot")
	if _, err := (&FileStore{}).writeSnapshot(context.Background(), path, st); err != nil {
		t.Fatal(err)
	}
	loaded, _, err := readSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := eventstest.Equal(loaded.Normalize(), st); err != nil {
		t.Fatal(err)
	}
}

// A rollback whose definitions are no longer all kept is refused whole,
// naming what is missing: never a partial rollback.
func TestGroupRollbackRefusesWhatIsNoLongerKept(t *testing.T) {
	m, clock := leadingMaster(t)
	h := m.Handler()
	if res := call(t, h, "POST", "/v2/groups", `{"id": "/g", "apps": [
		{"id": "a", "cmd": "sleep 100", "cpus": 0.1, "mem": 16},
		{"id": "b", "cmd": "sleep 200", "cpus": 0.1, "mem": 16}]}`); res.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.status, res.body)
	}
	v1 := groupVersions(t, h, "/g")[0]
	clock.Advance(time.Second)
	if res := call(t, h, "PUT", "/v2/groups/g?force=true", `{"id": "/g", "apps": [
		{"id": "a", "cmd": "sleep 101", "cpus": 0.1, "mem": 16}]}`); res.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", res.status, res.body)
	}
	// b's V1 definition is kept for the group's V1 alone; a store from
	// before would not have it.
	m.mu.Lock()
	kept := m.state.KeptApps["/g/b"]
	var err error
	if len(kept) == 1 {
		err = m.commitLocked(events.ReleaseApp("/g/b", kept[0].Version))
	}
	d := m.durableLocked()
	m.mu.Unlock()
	if err == nil {
		err = d.wait() // stored and published: the read view has it
	}
	if len(kept) != 1 || err != nil {
		t.Fatalf("kept definitions of /g/b: %v (%v)", kept, err)
	}
	before := seq(m)
	res := call(t, h, "PUT", "/v2/groups/g?force=true", `{"version": "`+v1+`"}`)
	msg, _ := res.json(t)["message"].(string)
	if res.status != http.StatusUnprocessableEntity || !strings.Contains(msg, "app /g/b version "+v1) {
		t.Fatalf("rollback with b's definition gone: %d %s", res.status, res.body)
	}
	if seq(m) != before || cmdOf(t, h, "/g/a") != "sleep 101" {
		t.Fatal("a refused rollback changed the state")
	}
	// Nor can the group be shown as it was: GET says what is missing.
	res = call(t, h, "GET", "/v2/groups/g/versions/"+v1, "")
	if got, _ := res.json(t)["message"].(string); res.status != http.StatusUnprocessableEntity || got != msg {
		t.Fatalf("GET /g at %s with b's definition gone: %d %s", v1, res.status, res.body)
	}
}

// A group with more apps directly in it than a version is kept of still
// changes, but cannot be rolled back: the refusal says why.
func TestGroupRollbackOfAGroupTooLargeToKeep(t *testing.T) {
	m, clock := leadingMaster(t)
	h := m.Handler()
	at := clock.Now().Add(-time.Hour)
	m.mu.Lock()
	for i := range maxGroupVersionRefs + 1 {
		a := events.App{ID: fmt.Sprintf("/big/app%05d", i), Cmd: "sleep 1", Cpus: 0.01, Mem: 1,
			Version: at, VersionInfo: events.VersionInfo{LastScalingAt: at, LastConfigChangeAt: at}}
		if err := m.commitLocked(events.PutApp(a), events.PutAppVersion(a)); err != nil {
			m.mu.Unlock()
			t.Fatal(err)
		}
	}
	m.mu.Unlock()
	if res := call(t, h, "PUT", "/v2/groups/big", `{"dependencies": ["/db"]}`); res.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", res.status, res.body)
	}
	v1 := groupVersions(t, h, "/big")[0]
	clock.Advance(time.Second)
	if res := call(t, h, "PUT", "/v2/groups/big", `{"dependencies": []}`); res.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", res.status, res.body)
	}
	before := seq(m)
	res := call(t, h, "PUT", "/v2/groups/big", `{"version": "`+v1+`"}`)
	msg, _ := res.json(t)["message"].(string)
	if res.status != http.StatusUnprocessableEntity || !strings.Contains(msg, fmt.Sprintf("it held %d apps and groups directly", maxGroupVersionRefs+1)) {
		t.Fatalf("rollback of a group too large to keep: %d %s", res.status, res.body)
	}
	if seq(m) != before {
		t.Fatal("a refused rollback changed the state")
	}
}

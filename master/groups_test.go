package master

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// A three-app chain, b on a and c on b (one relative, one absolute).
const chainGroup = `{"id": "/prod", "apps": [
	{"id": "a", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16,
	 "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]},
	{"id": "b", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16, "dependencies": ["a"]},
	{"id": "/prod/c", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 16, "dependencies": ["/prod/b"]}]}`

// stepsOf is a deployment's steps as "Action app" strings per step.
func stepsOf(steps []events.DeploymentStep) [][]string {
	var out [][]string
	for _, s := range steps {
		var acts []string
		for _, a := range s.Actions {
			acts = append(acts, a.Action+" "+a.App)
		}
		out = append(out, acts)
	}
	return out
}

func onlyDeployment(t *testing.T, m *Master) (d events.Deployment, ok bool) {
	t.Helper()
	m.View(func(s *events.State) {
		if len(s.Deployments) > 1 {
			t.Fatalf("%d deployments", len(s.Deployments))
		}
		for _, x := range s.Deployments {
			d, ok = x, true
		}
	})
	return d, ok
}

// runStaging reports every staging task of the app running, and healthy
// when healthy is set, as its agent would.
func runStaging(t *testing.T, m *Master, appID string, healthy *bool) int {
	t.Helper()
	n := 0
	for _, task := range tasksIn(m, appID, events.TaskStaging) {
		m.mu.Lock()
		err := m.commitLocked(m.taskStatusLocked(m.state.Tasks[task.ID], events.TaskRunning, "", healthy, m.cfg.Now())...)
		m.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// Marathon's DeploymentPlan for the chain: every app created first, then
// one step per layer of the dependency graph; an app's tasks start only
// once the apps it depends on run, healthy.
func TestGroupDependenciesOrderTheDeployment(t *testing.T) {
	m, _ := leadingMaster(t)
	h := m.Handler()
	addAgent(t, m, "h1", "127.0.0.9")

	res := call(t, h, "POST", "/v2/groups", chainGroup)
	if res.status != http.StatusCreated || res.header.Get("Location") != "/v2/groups/prod" {
		t.Fatalf("POST /v2/groups: %d %s %v", res.status, res.body, res.header)
	}
	namesItsDeployment(t, res)
	d, _ := onlyDeployment(t, m)
	want := [][]string{
		{"StartApplication /prod/a", "StartApplication /prod/b", "StartApplication /prod/c"},
		{"ScaleApplication /prod/a"}, {"ScaleApplication /prod/b"}, {"ScaleApplication /prod/c"},
	}
	if got := stepsOf(d.Steps); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	if d.Group != "/" || d.TotalSteps != 4 || d.CurrentStep != 1 {
		t.Fatalf("deployment %+v", d)
	}

	reconcile(t, m) // step 1: the apps exist; step 2 starts
	reconcile(t, m)
	if n := len(tasksIn(m, "/prod/a", events.TaskStaging)); n != 1 {
		t.Fatalf("a: %d staging tasks, want 1", n)
	}
	for _, id := range []string{"/prod/b", "/prod/c"} {
		if n := m.state.CountTasksOf(id); n != 0 {
			t.Fatalf("%s has %d tasks before a is healthy", id, n)
		}
	}
	if w := at(t, call(t, h, "GET", "/v2/apps/prod/b", "").json(t), "app", "deployments", 0, "id"); w != d.ID {
		t.Errorf("b is not held by its deployment: %v", w)
	}
	// Held apps are not in the launch queue yet, as in Marathon, where
	// they wait at 0 instances for their step.
	if q := call(t, h, "GET", "/v2/queue", "").json(t)["queue"].([]any); len(q) != 0 {
		t.Errorf("queue %v, want none: a's instance is staged, b and c wait for their step", q)
	}

	// Running but not yet healthy: b still waits.
	runStaging(t, m, "/prod/a", nil)
	reconcile(t, m)
	reconcile(t, m)
	if n := m.state.CountTasksOf("/prod/b"); n != 0 {
		t.Fatalf("b has %d tasks while a is not healthy", n)
	}
	healthy := true
	for _, task := range tasksIn(m, "/prod/a", events.TaskRunning) {
		m.mu.Lock()
		err := m.commitLocked(m.taskStatusLocked(m.state.Tasks[task.ID], events.TaskRunning, "", &healthy, m.cfg.Now())...)
		m.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	reconcile(t, m) // step 2 done: step 3 (b) starts
	reconcile(t, m)
	if n := len(tasksIn(m, "/prod/b", events.TaskStaging)); n != 1 {
		t.Fatalf("b: %d staging tasks after a is healthy, want 1", n)
	}
	if n := m.state.CountTasksOf("/prod/c"); n != 0 {
		t.Fatalf("c has %d tasks before b runs", n)
	}
	runStaging(t, m, "/prod/b", nil)
	reconcile(t, m)
	reconcile(t, m)
	if n := len(tasksIn(m, "/prod/c", events.TaskStaging)); n != 2 {
		t.Fatalf("c: %d staging tasks after b runs, want 2", n)
	}
	runStaging(t, m, "/prod/c", nil)
	reconcile(t, m)
	if _, ok := onlyDeployment(t, m); ok {
		t.Fatal("the deployment did not end once every app ran")
	}

	// scaleBy: every app of the group, rounded up, in one deployment.
	res = call(t, h, "PUT", "/v2/groups/prod", `{"scaleBy": 1.5}`)
	if res.status != http.StatusOK {
		t.Fatalf("scaleBy: %d %s", res.status, res.body)
	}
	namesItsDeployment(t, res)
	m.View(func(s *events.State) {
		for id, want := range map[string]int{"/prod/a": 2, "/prod/b": 2, "/prod/c": 3} {
			if got := s.Apps[id].Instances; got != want {
				t.Errorf("%s: %d instances after scaleBy 1.5, want %d", id, got, want)
			}
		}
	})
	d, _ = onlyDeployment(t, m)
	want = [][]string{{"ScaleApplication /prod/a"}, {"ScaleApplication /prod/b"}, {"ScaleApplication /prod/c"}}
	if got := stepsOf(d.Steps); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("scaleBy steps %v, want %v", got, want)
	}
}

func TestGroupCycleIsRefused(t *testing.T) {
	_, h := newAPI(t, "")
	res := call(t, h, "POST", "/v2/groups", `{"id": "/loop", "apps": [
		{"id": "a", "cmd": "sleep 1", "dependencies": ["c"]},
		{"id": "b", "cmd": "sleep 1", "dependencies": ["a"]},
		{"id": "c", "cmd": "sleep 1", "dependencies": ["b"]}]}`)
	if res.status != http.StatusUnprocessableEntity ||
		at(t, res.json(t), "details", 0, "path") != "/" ||
		at(t, res.json(t), "details", 0, "errors", 0) != "Dependency graph has cyclic dependencies." {
		t.Fatalf("cycle: %d %s", res.status, res.body)
	}
	if res := call(t, h, "GET", "/v2/groups/loop", ""); res.status != http.StatusNotFound {
		t.Fatalf("a refused group exists: %d %s", res.status, res.body)
	}
	// Through /v2/apps too: c may not come to depend on what depends on it.
	for _, app := range []string{
		`{"id": "/x/a", "cmd": "sleep 1"}`,
		`{"id": "/x/b", "cmd": "sleep 1", "dependencies": ["/x/a"]}`,
	} {
		if res := call(t, h, "POST", "/v2/apps", app); res.status != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", app, res.status, res.body)
		}
	}
	res = call(t, h, "PUT", "/v2/apps/x/a?force=true", `{"dependencies": ["b"]}`)
	if res.status != http.StatusUnprocessableEntity || !strings.Contains(string(res.body), "cyclic") {
		t.Fatalf("cycle through PUT /v2/apps: %d %s", res.status, res.body)
	}
	// A dependency on an app that does not exist orders nothing and is
	// kept, as Marathon keeps it (RootGroup.applicationDependencies).
	res = call(t, h, "POST", "/v2/apps", `{"id": "/x/c", "cmd": "sleep 1", "dependencies": ["../nowhere"]}`)
	if res.status != http.StatusCreated || at(t, res.json(t), "dependencies", 0) != "/nowhere" {
		t.Fatalf("dependency on a missing app: %d %s", res.status, res.body)
	}
}

func TestGroupTreeAndEmbeds(t *testing.T) {
	_, h := newAPI(t, "")
	// An empty group, and a group implied by an app's id.
	if res := call(t, h, "POST", "/v2/groups", `{"id": "/prod", "groups": [{"id": "empty"}],
		"apps": [{"id": "web", "cmd": "sleep 1", "instances": 2}]}`); res.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.status, res.body)
	}
	if res := call(t, h, "POST", "/v2/apps", `{"id": "/dev/api/v1", "cmd": "sleep 1"}`); res.status != http.StatusCreated {
		t.Fatal(res.status)
	}

	root := call(t, h, "GET", "/v2/groups", "").json(t)
	if root["id"] != "/" || at(t, root, "groups", 0, "id") != "/dev" || at(t, root, "groups", 1, "id") != "/prod" ||
		at(t, root, "groups", 0, "groups", 0, "id") != "/dev/api" ||
		at(t, root, "groups", 0, "groups", 0, "apps", 0, "id") != "/dev/api/v1" ||
		at(t, root, "groups", 1, "groups", 0, "id") != "/prod/empty" ||
		at(t, root, "groups", 1, "apps", 0, "instances") != 2.0 ||
		!marathonTime.MatchString(root["version"].(string)) {
		t.Fatalf("root %s", call(t, h, "GET", "/v2/groups", "").body)
	}
	if p, ok := root["pods"].([]any); !ok || len(p) != 0 {
		t.Errorf("pods %v, want [] by default", root["pods"])
	}

	// group.apps.tasks alone embeds no apps (Marathon's InfoEmbedResolver).
	g := call(t, h, "GET", "/v2/groups/prod?embed=group.apps.tasks", "").json(t)
	if _, ok := g["apps"]; ok {
		t.Errorf("apps without group.apps: %v", g)
	}
	if _, ok := g["groups"]; ok {
		t.Errorf("groups without group.groups: %v", g)
	}
	g = call(t, h, "GET", "/v2/groups/prod?embed=group.apps&embed=group.apps.tasks", "").json(t)
	if tasks, ok := at(t, g, "apps", 0).(map[string]any)["tasks"].([]any); !ok || len(tasks) != 0 {
		t.Errorf("apps.tasks %v", at(t, g, "apps", 0))
	}
	if _, ok := call(t, h, "GET", "/v2/groups/prod?embed=group.apps", "").json(t)["apps"].([]any)[0].(map[string]any)["tasks"]; ok {
		t.Errorf("tasks without group.apps.tasks")
	}

	res := call(t, h, "GET", "/v2/groups/nope", "")
	if res.status != http.StatusNotFound || res.json(t)["message"] != "Group '/nope' does not exist" {
		t.Fatalf("unknown group: %d %s", res.status, res.body)
	}
	res = call(t, h, "POST", "/v2/groups", `{"id": "prod"}`)
	if res.status != http.StatusConflict || res.json(t)["message"] != "Group /prod is already created. Use PUT to change this group." {
		t.Fatalf("POST of an existing group: %d %s", res.status, res.body)
	}
	res = call(t, h, "POST", "/v2/groups", `{"id": "/prod/web"}`)
	if res.status != http.StatusConflict || res.json(t)["message"] != "An app with the path /prod/web already exists." {
		t.Fatalf("POST of an app's path: %d %s", res.status, res.body)
	}
	res = call(t, h, "POST", "/v2/groups", `{"id": "/other", "apps": [{"id": "/elsewhere/x", "cmd": "sleep 1"}]}`)
	if res.status != http.StatusUnprocessableEntity || at(t, res.json(t), "details", 0, "path") != "/apps(0)/id" {
		t.Fatalf("an app outside its group: %d %s", res.status, res.body)
	}
	res = call(t, h, "POST", "/v2/groups", `{"id": "/other", "bogusField": 1, "apps": [{"id": "x", "cmd": "sleep 1", "instances": -1}]}`)
	if res.status != http.StatusUnprocessableEntity || !strings.Contains(string(res.body), `"/bogusField"`) ||
		!strings.Contains(string(res.body), `"/apps(0)/instances"`) {
		t.Fatalf("bad group: %d %s", res.status, res.body)
	}
	res = call(t, h, "POST", "/v2/groups", `{"id": "/other", "apps": [{"id": "x", "cmd": 5}]}`)
	if res.status != http.StatusBadRequest || at(t, res.json(t), "details", 0, "path") != "/apps(0)/cmd" {
		t.Fatalf("mistyped app: %d %s", res.status, res.body)
	}
}

func TestGroupUpdateDryRunVersionsDelete(t *testing.T) {
	m, h := newAPI(t, "")
	if res := call(t, h, "POST", "/v2/groups", chainGroup); res.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.status, res.body)
	}
	before := seq(m)
	// dryRun: the plan, and nothing changes.
	res := call(t, h, "PUT", "/v2/groups/prod?dryRun=true", `{"id": "/prod", "apps": [
		{"id": "a", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16,
		 "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]},
		{"id": "d", "cmd": "sleep 5"}]}`)
	if res.status != http.StatusOK {
		t.Fatalf("dryRun: %d %s", res.status, res.body)
	}
	var plan struct {
		Steps []struct {
			Actions []deploymentAction `json:"actions"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(res.body, &plan); err != nil || len(plan.Steps) != 3 ||
		plan.Steps[0].Actions[0] != (deploymentAction{Action: "StopApplication", App: "/prod/b"}) ||
		plan.Steps[1].Actions[0] != (deploymentAction{Action: "StartApplication", App: "/prod/d"}) ||
		plan.Steps[2].Actions[0] != (deploymentAction{Action: "ScaleApplication", App: "/prod/d"}) {
		t.Fatalf("dryRun plan %s (%v)", res.body, err)
	}
	if seq(m) != before {
		t.Fatal("dryRun changed the state")
	}
	// The creation's deployment still holds the apps.
	res = call(t, h, "PUT", "/v2/groups/prod", `{"apps": []}`)
	if res.status != http.StatusConflict || at(t, res.json(t), "deployments", 0, "id") == nil {
		t.Fatalf("PUT over a running deployment: %d %s", res.status, res.body)
	}
	// apps given = exactly these apps: b and c go, d comes.
	res = call(t, h, "PUT", "/v2/groups/prod?force=true", `{"id": "/prod", "apps": [
		{"id": "a", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16,
		 "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]},
		{"id": "d", "cmd": "sleep 5"}]}`)
	if res.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", res.status, res.body)
	}
	namesItsDeployment(t, res)
	m.View(func(s *events.State) {
		ids := slices.Sorted(func(yield func(string) bool) {
			for id := range s.Apps {
				if !yield(id) {
					return
				}
			}
		})
		if !slices.Equal(ids, []string{"/prod/a", "/prod/d"}) {
			t.Errorf("apps after PUT %v", ids)
		}
	})
	var versions []string
	res = call(t, h, "GET", "/v2/groups/prod/versions", "")
	if err := json.Unmarshal(res.body, &versions); err != nil || len(versions) != 2 || versions[0] <= versions[1] {
		t.Fatalf("versions %s", res.body)
	}
	// An app a group change made has that change's version.
	var appVersions struct{ Versions []string }
	if err := json.Unmarshal(call(t, h, "GET", "/v2/apps/prod/d/versions", "").body, &appVersions); err != nil ||
		len(appVersions.Versions) != 1 || appVersions.Versions[0] != versions[0] {
		t.Errorf("versions of /prod/d %v (%v), the group's newest is %s", appVersions.Versions, err, versions[0])
	}
	// The app embeds of /v2/apps, under group.apps.
	g := call(t, h, "GET", "/v2/groups/prod?embed=group.apps&embed=group.apps.readiness&embed=group.apps.taskStats", "").json(t)
	if r, ok := at(t, g, "apps", 0).(map[string]any)["readinessCheckResults"].([]any); !ok || len(r) != 0 {
		t.Errorf("group.apps.readiness: %v", at(t, g, "apps", 0))
	}
	if call(t, h, "GET", "/v2/groups/nope/versions", "").status != http.StatusNotFound {
		t.Error("versions of an unknown group")
	}

	res = call(t, h, "DELETE", "/v2/groups/prod?force=true", "")
	if res.status != http.StatusOK {
		t.Fatalf("DELETE: %d %s", res.status, res.body)
	}
	namesItsDeployment(t, res)
	m.View(func(s *events.State) {
		if len(s.Apps) != 0 || len(s.Groups) != 1 { // the root's record stays
			t.Errorf("after DELETE: apps %v groups %v", s.Apps, s.Groups)
		}
	})
	if res := call(t, h, "GET", "/v2/groups/prod", ""); res.status != http.StatusNotFound {
		t.Fatalf("deleted group: %d", res.status)
	}
	if res := call(t, h, "DELETE", "/v2/groups/prod", ""); res.status != http.StatusNotFound {
		t.Fatalf("DELETE of an unknown group: %d", res.status)
	}
}

// Groups are state: they survive a restart through the store's snapshot,
// and a follower has them.
func TestGroupsAreStored(t *testing.T) {
	st := events.NewState()
	g := events.Group{ID: "/empty", Dependencies: []string{"/db"}, Version: eventstest.T0, Versions: []time.Time{eventstest.T0}}
	if err := st.Apply(events.PutGroup(g).Stamp(st, 1, eventstest.T0)); err != nil {
		t.Fatal(err)
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

	// And through the event log, as a restarted master loads it.
	dir := t.TempDir()
	fs, err := OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	logged, err := fs.Load()
	if err != nil {
		t.Fatal(err)
	}
	evs := stampAll(logged, 1, []events.Change{events.PutGroup(g), events.PutGroup(events.Group{ID: "/gone"}), events.DeleteGroup("/gone")})
	if n, err := fs.AppendAll(evs); err != nil || n != len(evs) {
		t.Fatalf("AppendAll: %d %v", n, err)
	}
	fs.Close()
	if err := eventstest.Equal(reload(t, dir), logged); err != nil {
		t.Fatal(err)
	}
}

// A group change is told on /v2/events as Marathon tells it: accepted
// (group_change_success under the group), each step started and done,
// the deployment's success; one refused for a lock as group_change_failed.
func TestGroupEvents(t *testing.T) {
	m, srv := sseMaster(t)
	h := m.Handler()
	s := openSSE(t, srv.URL+"/v2/events", "")
	s.next(t) // event_stream_attached
	if res := call(t, h, "POST", "/v2/groups", `{"id": "/prod", "apps": [
		{"id": "a", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16},
		{"id": "b", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "dependencies": ["a"]}]}`); res.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.status, res.body)
	}
	var types []string
	for _, msg := range s.until(t, "deployment_info") {
		types = append(types, msg.typ)
		// Marathon's GroupsResource changes the root group "in" the
		// parent of the URL's group: here /v2/groups, the root.
		if msg.typ == "group_change_success" && decode(t, msg)["groupId"] != "/" {
			t.Errorf("group_change_success %s", msg.data)
		}
	}
	if !slices.Contains(types, "group_change_success") {
		t.Fatalf("events %v, no group_change_success", types)
	}

	// A change refused for the lock the deployment holds.
	if res := call(t, h, "PUT", "/v2/groups/prod", `{"apps": []}`); res.status != http.StatusConflict {
		t.Fatalf("PUT over the deployment: %d %s", res.status, res.body)
	}
	failed := s.until(t, "group_change_failed")
	if v := decode(t, failed[len(failed)-1]); v["groupId"] != "/" || !strings.Contains(v["reason"].(string), "locked") {
		t.Errorf("group_change_failed %v", v)
	}

	reconcile(t, m) // step 1 (create) done
	steps := s.until(t, "deployment_step_success")
	if v := decode(t, steps[len(steps)-1]); at(t, v, "currentStep", "actions", 0, "action") != "StartApplication" {
		t.Errorf("first step done: %v", v)
	}
	if info := s.next(t); info.typ != "deployment_info" || at(t, decode(t, info), "currentStep", "actions", 0, "app") != "/prod/a" {
		t.Fatalf("second step: %+v", info)
	}
	for _, app := range []string{"/prod/a", "/prod/b"} {
		reconcile(t, m)
		runStaging(t, m, app, nil)
		reconcile(t, m)
	}
	s.until(t, "deployment_success")
}

// DELETE /v2/deployments/{id} on a group's deployment undoes all of it:
// apps it created go, apps it changed go back.
func TestGroupDeploymentRollback(t *testing.T) {
	m, h := newAPI(t, "")
	res := call(t, h, "POST", "/v2/groups", chainGroup)
	if res.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.status, res.body)
	}
	created := res.json(t)["deploymentId"].(string)
	if res := call(t, h, "DELETE", "/v2/deployments/"+created, ""); res.status != http.StatusOK {
		t.Fatalf("roll back the creation: %d %s", res.status, res.body)
	}
	m.View(func(s *events.State) {
		if len(s.Apps) != 0 {
			t.Errorf("apps after rolling back their creation: %v", slices.Collect(func(yield func(string) bool) {
				for id := range s.Apps {
					yield(id)
				}
			}))
		}
	})

	if res := call(t, h, "POST", "/v2/groups?force=true", chainGroup); res.status != http.StatusCreated {
		t.Fatalf("POST again: %d %s", res.status, res.body)
	}
	d, _ := onlyDeployment(t, m)
	if res := call(t, h, "DELETE", "/v2/deployments/"+d.ID+"?force=true", ""); res.status != http.StatusAccepted {
		t.Fatalf("stop the creation: %d", res.status)
	}
	res = call(t, h, "PUT", "/v2/groups/prod", `{"scaleBy": 3}`)
	if res.status != http.StatusOK {
		t.Fatalf("scaleBy: %d %s", res.status, res.body)
	}
	if res := call(t, h, "DELETE", "/v2/deployments/"+res.json(t)["deploymentId"].(string), ""); res.status != http.StatusOK {
		t.Fatalf("roll back the scaling: %d %s", res.status, res.body)
	}
	m.View(func(s *events.State) {
		for id, want := range map[string]int{"/prod/a": 1, "/prod/b": 1, "/prod/c": 2} {
			if got := s.Apps[id].Instances; got != want {
				t.Errorf("%s: %d instances after the rollback, want %d", id, got, want)
			}
		}
	})
}

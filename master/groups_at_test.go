package master

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/atollhq/atoll/events/eventstest"
)

// appsOf is a JSON array of apps' ids and cmds, in order.
func appsOf(t *testing.T, res response) (ids, cmds []string) {
	t.Helper()
	var apps []map[string]any
	if err := json.Unmarshal(res.body, &apps); err != nil {
		t.Fatalf("not an array of apps: %d %s", res.status, res.body)
	}
	for _, a := range apps {
		id, _ := a["id"].(string)
		cmd, _ := a["cmd"].(string)
		ids, cmds = append(ids, id), append(cmds, cmd)
	}
	return ids, cmds
}

// groupAppsIn are the ids and cmds of group g's apps in a GroupInfo.
func groupAppsIn(t *testing.T, g map[string]any) (ids, cmds []string) {
	t.Helper()
	apps, _ := g["apps"].([]any)
	for _, a := range apps {
		a := a.(map[string]any)
		id, _ := a["id"].(string)
		cmd, _ := a["cmd"].(string)
		ids, cmds = append(ids, id), append(cmds, cmd)
	}
	return ids, cmds
}

// GET /v2/groups/{id}/versions/{v} is the group as it was at v, as
// Marathon's GroupsResource answers it (the dcos CLI's `marathon group
// show --group-version`): its apps with their definitions then, its
// subgroups, its version then; and it still is after a restart.
func TestGroupAtAVersion(t *testing.T) {
	dir := t.TempDir()
	clock := &manualClock{now: time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)}
	ns := eventstest.StartNATS(t)
	m, fs := masterOnFileStore(t, dir, clock, ns)
	h := m.Handler()
	addAgent(t, m, "h1", "127.0.0.9")
	all := []string{"/g/a", "/g/b", "/g/c", "/g/sub/x"}

	res := call(t, h, "POST", "/v2/groups", `{"id": "/g", "apps": [
		{"id": "a", "cmd": "sleep 100", "cpus": 0.1, "mem": 16},
		{"id": "b", "cmd": "sleep 200", "cpus": 0.1, "mem": 16}],
		"groups": [{"id": "sub", "apps": [{"id": "x", "cmd": "sleep 400", "cpus": 0.1, "mem": 16}]}]}`)
	if res.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.status, res.body)
	}
	settle(t, m, all...)
	v1 := groupVersions(t, h, "/g")[0]
	clock.Advance(time.Second)
	res = call(t, h, "PUT", "/v2/groups/g", `{"id": "/g", "apps": [
		{"id": "a", "cmd": "sleep 101", "cpus": 0.1, "mem": 16},
		{"id": "c", "cmd": "sleep 300", "cpus": 0.1, "mem": 16}]}`)
	if res.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", res.status, res.body)
	}
	v2 := groupVersions(t, h, "/g")[0] // read right after the write
	if v2 == v1 {
		t.Fatalf("no new version: %s", v2)
	}

	check := func(h http.Handler) {
		t.Helper()
		res := call(t, h, "GET", "/v2/groups/g/versions/"+v1, "")
		if res.status != http.StatusOK {
			t.Fatalf("GET at %s: %d %s", v1, res.status, res.body)
		}
		g := res.json(t)
		ids, cmds := groupAppsIn(t, g)
		if g["id"] != "/g" || g["version"] != v1 || !slices.Equal(ids, []string{"/g/a", "/g/b"}) ||
			!slices.Equal(cmds, []string{"sleep 100", "sleep 200"}) ||
			at(t, g, "groups", 0, "id") != "/g/sub" || at(t, g, "groups", 0, "apps", 0, "cmd") != "sleep 400" {
			t.Fatalf("/g at %s: %s", v1, res.body)
		}
		if p, ok := g["pods"].([]any); !ok || len(p) != 0 {
			t.Errorf("pods %v, want [] by default", g["pods"])
		}
		// The definitions then: no task counts or deployments (Marathon
		// embeds no app status here), whatever the app embeds say.
		res = call(t, h, "GET", "/v2/groups/g/versions/"+v1+"?embed=group.apps&embed=group.apps.tasks", "")
		a := at(t, res.json(t), "apps", 0).(map[string]any)
		for _, k := range []string{"tasksRunning", "deployments", "tasks"} {
			if _, ok := a[k]; ok {
				t.Errorf("%s in an app as it was: %s", k, res.body)
			}
		}
		if _, ok := res.json(t)["groups"]; ok {
			t.Errorf("groups without group.groups: %s", res.body)
		}

		res = call(t, h, "GET", "/v2/groups/g/versions/"+v2, "")
		g = res.json(t)
		ids, cmds = groupAppsIn(t, g)
		if res.status != http.StatusOK || g["version"] != v2 || !slices.Equal(ids, []string{"/g/a", "/g/c"}) ||
			!slices.Equal(cmds, []string{"sleep 101", "sleep 300"}) {
			t.Fatalf("/g at %s: %d %s", v2, res.status, res.body)
		}

		// Marathon's answers: an unknown version or group is 404 naming
		// the group; a version that is no time is 422.
		for _, path := range []string{"/v2/groups/g/versions/2001-01-01T00:00:00.000Z", "/v2/groups/nope/versions/" + v1} {
			res = call(t, h, "GET", path, "")
			want := "Group '/g' does not exist"
			if path != "/v2/groups/g/versions/2001-01-01T00:00:00.000Z" {
				want = "Group '/nope' does not exist"
			}
			if res.status != http.StatusNotFound || res.json(t)["message"] != want {
				t.Errorf("%s: %d %s", path, res.status, res.body)
			}
		}
		res = call(t, h, "GET", "/v2/groups/g/versions/yesterday", "")
		if res.status != http.StatusUnprocessableEntity ||
			res.json(t)["message"] != "Invalid timestamp provided 'yesterday'. Expecting ISO-8601 datetime string." {
			t.Errorf("a version that is no time: %d %s", res.status, res.body)
		}

		// The root's: /v2/groups/versions/{v}.
		rv := groupVersions(t, h, "")[0]
		res = call(t, h, "GET", "/v2/groups/versions/"+rv, "")
		if res.status != http.StatusOK || res.json(t)["id"] != "/" || at(t, res.json(t), "groups", 0, "id") != "/g" ||
			at(t, res.json(t), "groups", 0, "apps", 0, "cmd") != "sleep 101" {
			t.Fatalf("the root at %s: %d %s", rv, res.status, res.body)
		}
	}
	check(h)

	// From the store, after a restart.
	fs.Close()
	m2, _ := masterOnFileStore(t, dir, clock, ns)
	check(m2.Handler())
}

// GET /v2/groups/{id}/apps is a bare array of every app below the group,
// as Marathon's selectAppsInGroup; group ids with "apps" or "versions"
// as a segment are read as Marathon's regexes read them.
func TestGroupApps(t *testing.T) {
	_, h := newAPI(t, "")
	for _, body := range []string{
		`{"id": "/g", "apps": [{"id": "b", "cmd": "sleep 2"}, {"id": "a", "cmd": "sleep 1"}],
			"groups": [{"id": "sub", "apps": [{"id": "x", "cmd": "sleep 3"}]}]}`,
		`{"id": "/h/apps/x", "apps": [{"id": "y", "cmd": "sleep 4"}]}`,
		`{"id": "/gx", "apps": [{"id": "z", "cmd": "sleep 5"}]}`,
	} {
		if res := call(t, h, "POST", "/v2/groups", body); res.status != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", body, res.status, res.body)
		}
	}
	for path, want := range map[string][]string{
		"/v2/groups/g/apps":      {"/g/a", "/g/b", "/g/sub/x"},
		"/v2/groups/g/sub/apps":  {"/g/sub/x"},
		"/v2/groups/apps":        {"/g/a", "/g/b", "/g/sub/x", "/gx/z", "/h/apps/x/y"},
		"/v2/groups/h/apps":      {"/h/apps/x/y"},
		"/v2/groups/h/apps/apps": {"/h/apps/x/y"}, // the apps below /h/apps
		"/v2/groups/nope/apps":   {},              // Marathon: none, not 404
	} {
		res := call(t, h, "GET", path, "")
		ids, _ := appsOf(t, res)
		if res.status != http.StatusOK || !slices.Equal(ids, want) {
			t.Errorf("%s: %d %s, want %v", path, res.status, res.body, want)
		}
	}
	res := call(t, h, "GET", "/v2/groups/g/apps?embed=group.apps.tasks", "")
	var apps []map[string]any
	if err := json.Unmarshal(res.body, &apps); err != nil || len(apps) != 3 {
		t.Fatalf("with tasks: %s", res.body)
	}
	if _, ok := apps[0]["tasks"]; !ok {
		t.Errorf("group.apps.tasks embeds no tasks: %s", res.body)
	}
	if _, ok := apps[0]["tasksRunning"]; !ok {
		t.Errorf("no counts: %s", res.body)
	}

	// A group with "apps" as a segment other than the last is that group.
	res = call(t, h, "GET", "/v2/groups/h/apps/x", "")
	if res.status != http.StatusOK || res.json(t)["id"] != "/h/apps/x" {
		t.Errorf("GET /v2/groups/h/apps/x: %d %s", res.status, res.body)
	}
	if vs := groupVersions(t, h, "/h/apps/x"); len(vs) == 0 {
		t.Errorf("versions of /h/apps/x: %v", vs)
	}
}

// splitGroupPath reads a GET as Marathon's GroupsResource regexes do, in
// their order; other methods name the whole path.
func TestSplitGroupPath(t *testing.T) {
	for _, c := range []struct {
		method, rest string
		want         groupPath
	}{
		{"GET", "", groupPath{id: "/"}},
		{"GET", "/g/h", groupPath{id: "/g/h"}},
		{"GET", "/apps", groupPath{id: "/", kind: pathApps}},
		{"GET", "/g/apps", groupPath{id: "/g", kind: pathApps}},
		{"GET", "/g/apps/x", groupPath{id: "/g/apps/x"}},
		{"GET", "/versions", groupPath{id: "/", kind: pathVersions}},
		{"GET", "/g/versions", groupPath{id: "/g", kind: pathVersions}},
		{"GET", "/g/versions/V", groupPath{id: "/g", kind: pathAtVersion, version: "V"}},
		{"GET", "/versions/V", groupPath{id: "/", kind: pathAtVersion, version: "V"}},
		{"GET", "/a/versions/b/versions/V", groupPath{id: "/a/versions/b", kind: pathAtVersion, version: "V"}},
		{"GET", "/g/versions/apps", groupPath{id: "/g/versions", kind: pathApps}},             // apps first
		{"GET", "/g/versions/V/versions", groupPath{id: "/g/versions/V", kind: pathVersions}}, // then versions
		{"PUT", "/g/apps", groupPath{id: "/g/apps"}},
		{"DELETE", "/g/versions/V", groupPath{id: "/g/versions/V"}},
	} {
		if got := splitGroupPath(c.method, c.rest); got != c.want {
			t.Errorf("%s %q: %+v, want %+v", c.method, c.rest, got, c.want)
		}
	}
}

package master

import (
	"net/http"
	"strings"
	"testing"

	"github.com/atollhq/atoll/events"
)

// Every change to an app is a version, listed newest first; each can be
// read back as it was, and PUT {"version": V} deploys it again as the
// app's next version (Marathon's rollback). A rollback body with other
// fields, an unknown version or a missing app changes nothing.
func TestAppVersionsAndRollback(t *testing.T) {
	m, h := newAPI(t, "")
	if res := call(t, h, "POST", "/v2/apps", webApp); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	for _, body := range []string{`{"cmd":"sleep 2000"}`, `{"instances":5}`} {
		if res := call(t, h, "PUT", "/v2/apps/web?force=true", body); res.status != http.StatusOK {
			t.Fatalf("update %s: %d %s", body, res.status, res.body)
		}
	}
	versions := func() []string {
		t.Helper()
		res := call(t, h, "GET", "/v2/apps/web/versions", "")
		if res.status != http.StatusOK {
			t.Fatalf("versions: %d %s", res.status, res.body)
		}
		var out []string
		for _, v := range at(t, res.json(t), "versions").([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	vs := versions()
	if len(vs) != 3 || !(vs[0] > vs[1] && vs[1] > vs[2]) {
		t.Fatalf("versions = %v, want 3, newest first", vs)
	}
	current := at(t, call(t, h, "GET", "/v2/apps/web", "").json(t), "app", "version")
	if vs[0] != current {
		t.Errorf("newest version %s is not the app's version %v", vs[0], current)
	}
	first := call(t, h, "GET", "/v2/apps/web/versions/"+vs[2], "")
	if first.status != http.StatusOK || at(t, first.json(t), "cmd") != "sleep 1000" || at(t, first.json(t), "instances") != 2.0 {
		t.Fatalf("first version: %d %s", first.status, first.body)
	}
	if _, ok := first.json(t)["tasksRunning"]; ok {
		t.Errorf("a version is the bare definition, without task counts: %s", first.body)
	}

	// Refused rollbacks change nothing.
	before := seq(m)
	for _, tc := range []struct {
		path, body string
		status     int
		want       string
	}{
		{"/v2/apps/web?force=true", `{"version":"` + vs[2] + `","cmd":"sleep 1"}`, http.StatusUnprocessableEntity, msgRollbackAlone},
		{"/v2/apps/web?force=true", `{"version":"2001-01-01T00:00:00.000Z"}`, http.StatusNotFound, "App '/web' does not exist in version 2001-01-01T00:00:00.000Z"},
		{"/v2/apps/nope", `{"version":"` + vs[2] + `"}`, http.StatusNotFound, "App '/nope' does not exist"},
		{"/v2/apps/web?force=true", `{"version":"yesterday"}`, http.StatusUnprocessableEntity, "must be a version"},
	} {
		res := call(t, h, "PUT", tc.path, tc.body)
		if res.status != tc.status || !strings.Contains(string(res.body), tc.want) {
			t.Errorf("PUT %s %s: %d %s, want %d with %q", tc.path, tc.body, res.status, res.body, tc.status, tc.want)
		}
	}
	if seq(m) != before {
		t.Fatalf("a refused rollback changed the state (seq %d -> %d)", before, seq(m))
	}

	// The rollback restores the first definition, as a new version.
	res := call(t, h, "PUT", "/v2/apps/web?force=true", `{"id":"/web","version":"`+vs[2]+`"}`)
	if res.status != http.StatusOK {
		t.Fatalf("rollback: %d %s", res.status, res.body)
	}
	namesItsDeployment(t, res)
	m.View(func(s *events.State) {
		a := s.Apps["/web"]
		if a.Cmd != "sleep 1000" || a.Instances != 2 || a.Labels["HAPROXY_GROUP"] != "external" {
			t.Errorf("after rollback: cmd %q, instances %d, labels %v; want the first definition", a.Cmd, a.Instances, a.Labels)
		}
		if jsonTime(a.Version).String() <= vs[0] {
			t.Errorf("the rollback's version %s is not newer than %s", jsonTime(a.Version), vs[0])
		}
		if !a.VersionInfo.LastConfigChangeAt.Equal(a.Version) {
			t.Errorf("a rollback to another command is a config change: %+v", a.VersionInfo)
		}
	})
	if got := versions(); len(got) != 4 || got[1] != vs[0] {
		t.Errorf("versions after rollback = %v, want 4 with the rollback first", got)
	}
	// PATCH takes a rollback too.
	if res := call(t, h, "PATCH", "/v2/apps/web?force=true", `{"version":"`+vs[0]+`"}`); res.status != http.StatusOK {
		t.Fatalf("rollback by PATCH: %d %s", res.status, res.body)
	}
	m.View(func(s *events.State) {
		if a := s.Apps["/web"]; a.Cmd != "sleep 2000" || a.Instances != 5 {
			t.Errorf("after PATCH rollback: cmd %q, instances %d", a.Cmd, a.Instances)
		}
	})

	// Deleting the app forgets its versions, as Marathon does.
	if res := call(t, h, "DELETE", "/v2/apps/web", ""); res.status != http.StatusOK {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	if res := call(t, h, "GET", "/v2/apps/web/versions", ""); res.status != http.StatusNotFound {
		t.Errorf("versions of a deleted app: %d %s", res.status, res.body)
	}
	m.View(func(s *events.State) {
		if len(s.AppVersions["/web"]) != 0 {
			t.Errorf("the deleted app's versions are kept: %d", len(s.AppVersions["/web"]))
		}
	})
}

// The history is bounded (Marathon's --zk_max_versions): the oldest
// versions go.
func TestAppVersionsBounded(t *testing.T) {
	m, h := newAPI(t, "")
	m.cfg.MaxAppVersions = 3
	if res := call(t, h, "POST", "/v2/apps", webApp); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	for i := 3; i <= 7; i++ {
		if res := call(t, h, "PUT", "/v2/apps/web?force=true", `{"instances":`+string(rune('0'+i))+`}`); res.status != http.StatusOK {
			t.Fatalf("scale: %d %s", res.status, res.body)
		}
	}
	res := call(t, h, "GET", "/v2/apps/web/versions", "")
	vs := at(t, res.json(t), "versions").([]any)
	if len(vs) != 3 {
		t.Fatalf("versions = %v, want the last 3", vs)
	}
	last := call(t, h, "GET", "/v2/apps/web/versions/"+vs[2].(string), "")
	if at(t, last.json(t), "instances") != 5.0 {
		t.Errorf("oldest kept version has %v instances, want 5", at(t, last.json(t), "instances"))
	}
}

package master

import (
	"net/http"
	"slices"
	"testing"

	"github.com/atollhq/atoll/events"
)

// PUT /v2/apps changes several apps, creating the new ones, in one
// deployment; PATCH creates nothing; one bad item refuses the whole call
// and nothing changes; an item may be a rollback.
func TestBulkAppUpdates(t *testing.T) {
	m, h := newAPI(t, "")
	if res := call(t, h, "POST", "/v2/apps", webApp); res.status != http.StatusCreated {
		t.Fatal(res.status)
	}
	first := at(t, call(t, h, "GET", "/v2/apps/web/versions", "").json(t), "versions", 0).(string)

	res := call(t, h, "PUT", "/v2/apps?force=true", `[{"id":"/web","instances":3},{"id":"new","cmd":"sleep 1"}]`)
	if res.status != http.StatusOK {
		t.Fatalf("bulk PUT: %d %s", res.status, res.body)
	}
	namesItsDeployment(t, res)
	depID := at(t, res.json(t), "deploymentId").(string)
	m.View(func(s *events.State) {
		if a := s.Apps["/web"]; a.Instances != 3 || a.Cmd != "sleep 1000" {
			t.Errorf("/web after bulk PUT: instances %d cmd %q (a partial update)", a.Instances, a.Cmd)
		}
		if _, ok := s.Apps["/new"]; !ok {
			t.Error("bulk PUT did not create /new")
		}
		d, ok := s.Deployments[depID]
		if !ok || !slices.Equal(d.AffectedApps, []string{"/new", "/web"}) {
			t.Errorf("one deployment for both apps: %+v", d)
		}
	})

	before := seq(m)
	for _, tc := range []struct {
		method, body string
		status       int
		path         string
	}{
		{"PATCH", `[{"id":"/nope","instances":1}]`, http.StatusNotFound, ""},
		{"PUT", `[{"id":"/web","instances":-1},{"cmd":"x"}]`, http.StatusUnprocessableEntity, "/(0)/instances"},
		{"PUT", `[{"id":"/web","instances":1},{"cmd":"x"}]`, http.StatusUnprocessableEntity, "/(1)/id"},
		{"PUT", `[{"id":"/web","bogusField":1}]`, http.StatusUnprocessableEntity, "/(0)/bogusField"},
		{"PUT", `{"id":"/web"}`, http.StatusBadRequest, "/"},
	} {
		res := call(t, h, tc.method, "/v2/apps?force=true", tc.body)
		if res.status != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.body, res.status, res.body, tc.status)
			continue
		}
		if tc.path != "" {
			found := false
			for _, d := range at(t, res.json(t), "details").([]any) {
				found = found || d.(map[string]any)["path"] == tc.path
			}
			if !found {
				t.Errorf("%s %s: no error at %s: %s", tc.method, tc.body, tc.path, res.body)
			}
		}
	}
	if seq(m) != before {
		t.Fatalf("a refused bulk update changed the state")
	}

	if res := call(t, h, "PATCH", "/v2/apps?force=true", `[{"id":"/web","version":"`+first+`"},{"id":"/new","instances":2}]`); res.status != http.StatusOK {
		t.Fatalf("bulk PATCH with a rollback: %d %s", res.status, res.body)
	}
	m.View(func(s *events.State) {
		if a := s.Apps["/web"]; a.Instances != 2 {
			t.Errorf("/web rolled back to %d instances, want 2", a.Instances)
		}
		if a := s.Apps["/new"]; a.Instances != 2 || a.Cmd != "sleep 1" {
			t.Errorf("/new after PATCH: %+v", a)
		}
	})
}

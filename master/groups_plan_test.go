package master

import (
	"slices"
	"testing"

	"github.com/atollhq/atoll/events"
)

func planApps(deps map[string][]string) map[string]events.App {
	out := map[string]events.App{}
	for id, d := range deps {
		out[id] = events.App{ID: id, Cmd: "sleep 1", Instances: 1, Dependencies: d}
	}
	return out
}

// The layering of Marathon's DeploymentPlanTest ("partition a simple
// group's apps into concurrently deployable subsets"): a, then b and c
// (both on a), then d (on b); and a group's dependencies hold for every
// app below it, a dependency on a group for every app below that.
func TestPlanStepsLayers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		apps   map[string][]string
		groups map[string]events.Group
		want   [][]string
	}{
		{
			name: "marathon's four apps",
			apps: map[string][]string{
				"/test/database/a": nil,
				"/test/service/b":  {"/test/database/a"},
				"/test/c":          {"/test/database/a"},
				"/test/d":          {"/test/service/b"},
			},
			want: [][]string{
				{"StartApplication /test/c", "StartApplication /test/d", "StartApplication /test/database/a", "StartApplication /test/service/b"},
				{"ScaleApplication /test/database/a"},
				{"ScaleApplication /test/c", "ScaleApplication /test/service/b"},
				{"ScaleApplication /test/d"},
			},
		},
		{
			name:   "a group on a group",
			apps:   map[string][]string{"/front/web": nil, "/front/api": nil, "/back/db": nil, "/back/cache": {"/missing"}},
			groups: map[string]events.Group{"/front": {ID: "/front", Dependencies: []string{"/back"}}},
			want: [][]string{
				{"StartApplication /back/cache", "StartApplication /back/db", "StartApplication /front/api", "StartApplication /front/web"},
				{"ScaleApplication /back/cache", "ScaleApplication /back/db"},
				{"ScaleApplication /front/api", "ScaleApplication /front/web"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps, affected, err := planSteps(nil, planApps(tc.apps), tc.groups)
			if err != nil {
				t.Fatal(err)
			}
			if got := stepsOf(steps); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Fatalf("steps\n%v\nwant\n%v", got, tc.want)
			}
			if len(affected) != len(tc.apps) {
				t.Errorf("affected %v", affected)
			}
		})
	}
}

// A change stops what goes first, restarts what changed and scales what
// only changed its instances, in dependency order; unchanged apps have no
// step but still order the others.
func TestPlanStepsOfAChange(t *testing.T) {
	from := planApps(map[string][]string{"/g/db": nil, "/g/api": {"/g/db"}, "/g/web": {"/g/api"}, "/g/old": nil})
	to := planApps(map[string][]string{"/g/db": nil, "/g/api": {"/g/db"}, "/g/web": {"/g/api"}})
	api, web := to["/g/api"], to["/g/web"]
	api.Cmd = "sleep 2"
	web.Instances = 3
	to["/g/api"], to["/g/web"] = api, web
	steps, affected, err := planSteps(from, to, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"StopApplication /g/old"}, {"RestartApplication /g/api"}, {"ScaleApplication /g/web"}}
	if got := stepsOf(steps); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	if !slices.Equal(affected, []string{"/g/api", "/g/old", "/g/web"}) {
		t.Errorf("affected %v", affected)
	}

	to["/g/db"] = events.App{ID: "/g/db", Cmd: "sleep 1", Instances: 1, Dependencies: []string{"/g/web"}}
	if _, _, err := planSteps(from, to, nil); err == nil {
		t.Fatal("a cycle is planned")
	}
	// A group that depends on an app below it makes that app depend on
	// itself: a cycle too, as in Marathon's graph.
	if err := checkNoCycle(planApps(map[string][]string{"/g/db": nil}), map[string]events.Group{"/g": {ID: "/g", Dependencies: []string{"/g/db"}}}); err == nil {
		t.Fatal("a self-dependency is no cycle")
	}
}

func TestResolvePath(t *testing.T) {
	for _, tc := range [][3]string{
		{"/prod", "db", "/prod/db"},
		{"/prod/web", "../db", "/prod/db"},
		{"/prod", "/abs/x", "/abs/x"},
		{"/", "a/./b", "/a/b"},
		{"/", "../x", "/../x"}, // above the root: kept for validation to refuse
	} {
		if got := resolvePath(tc[0], tc[1]); got != tc[2] {
			t.Errorf("resolvePath(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

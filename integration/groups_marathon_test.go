package integration

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
)

// Groups through a real Marathon client (issue 14): go-marathon creates a
// group of three apps where b depends on a and c on b; the master starts
// them in that order, each once the one before is running and healthy;
// WaitOnGroup, Group(s), scaleBy, UpdateGroup and DeleteGroup do what they
// say.

// gmApp is an echo app as go-marathon builds one, with an HTTP health
// check on /health when checked. (go-marathon cannot set the check's
// delaySeconds: the default 15 s holds each checked step back that long.)
func gmApp(id string, instances int, checked bool, deps ...string) *marathon.Application {
	app := &marathon.Application{}
	app.Name(id).Command("atoll echo").CPU(0.1).Memory(16).Count(instances)
	app.AddPortDefinition(marathon.PortDefinition{Port: intPtr(0)})
	if checked {
		app.AddHealthCheck(marathon.HealthCheck{Protocol: "HTTP", Path: strPtr("/health"), PortIndex: intPtr(0),
			GracePeriodSeconds: 30, IntervalSeconds: 1, TimeoutSeconds: 1, MaxConsecutiveFailures: intPtr(0)})
	}
	if len(deps) > 0 {
		app.DependsOn(deps...)
	}
	return app
}

// gmGroup is the group: a (answering /health with 500 for its first 3 s:
// running is not enough for b to start), b on a, and c on b unless
// without c. a and b check their health; c, which nothing depends on,
// does not need to.
func gmGroup(withC bool) *marathon.Group {
	a := gmApp("/gm/a", 1, true)
	a.AddEnv("ECHO_UNHEALTHY_FOR", "3s")
	g := marathon.NewApplicationGroup("/gm").App(a).App(gmApp("/gm/b", 1, true, "/gm/a"))
	if withC {
		g.App(gmApp("/gm/c", 2, false, "/gm/b"))
	}
	return g
}

func intPtr(i int) *int       { return &i }
func strPtr(s string) *string { return &s }

// healthySince is when the app's last task to pass its health check
// first passed it: when all of the app was healthy.
func healthySince(t *testing.T, client marathon.Marathon, appID string) time.Time {
	t.Helper()
	tasks, err := client.Tasks(appID)
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for _, task := range tasks.Tasks {
		if len(task.HealthCheckResults) == 0 || task.HealthCheckResults[0].FirstSuccess == "" {
			t.Fatalf("%s: task %s was never healthy", appID, task.ID)
		}
		at := mustTime(t, task.HealthCheckResults[0].FirstSuccess)
		if at.After(last) {
			last = at
		}
	}
	return last
}

// firstStaged is when the app's first task was staged.
func firstStaged(t *testing.T, client marathon.Marathon, appID string) time.Time {
	t.Helper()
	tasks, err := client.Tasks(appID)
	if err != nil {
		t.Fatal(err)
	}
	var stamps []time.Time
	for _, task := range tasks.Tasks {
		stamps = append(stamps, mustTime(t, task.StagedAt))
	}
	if len(stamps) == 0 {
		t.Fatalf("%s has no task", appID)
	}
	sort.Slice(stamps, func(i, j int) bool { return stamps[i].Before(stamps[j]) })
	return stamps[0]
}

// listenGroupEvents follows /v2/events with go-marathon's SSE client and
// returns what it has seen so far: counts by event type (group changes
// by type and group id).
func listenGroupEvents(t *testing.T, api string) func() map[string]int {
	t.Helper()
	// A client of its own: go-marathon's SSE subscription sets
	// CheckRedirect on its HTTP client, which would be http.DefaultClient,
	// shared with every other test's (a data race).
	client, err := marathon.NewClient(marathon.Config{URL: api, EventsTransport: marathon.EventsTransportSSE, HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := client.AddEventsListener(marathon.EventIDGroupChangeSuccess | marathon.EventIDDeploymentStepSuccess |
		marathon.EventIDDeploymentSuccess)
	if err != nil {
		t.Fatalf("AddEventsListener: %v", err)
	}
	var mu sync.Mutex
	counts := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-ch:
				if !ok { // RemoveEventsListener closed it
					return
				}
				key := ev.Name
				if g, ok := ev.Event.(*marathon.EventGroupChangeSuccess); ok {
					key += " " + g.GroupID
				}
				mu.Lock()
				counts[key]++
				mu.Unlock()
			}
		}
	}()
	// Removed first, so that the client never waits on a listener gone.
	t.Cleanup(func() { client.RemoveEventsListener(ch); cancel(); <-done })
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(counts)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return at
}

func TestGroupsWithGoMarathon(t *testing.T) {
	c := startCluster(t, clusterOptions{agents: 2})
	client, err := marathon.NewClient(marathon.Config{URL: c.api, HTTPClient: &http.Client{Timeout: 10 * time.Second},
		PollingWaitTime: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	seen := listenGroupEvents(t, c.api)
	if err := client.CreateGroup(gmGroup(true)); err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	start := time.Now()
	if err := client.WaitOnGroup("/gm", 90*time.Second); err != nil {
		t.Fatalf("WaitOnGroup: %v", err)
	}
	t.Logf("created in %s", time.Since(start))
	if ids, err := client.Deployments(); err != nil || len(ids) != 0 {
		t.Fatalf("deployments after WaitOnGroup: %v %v", ids, err)
	}
	// The events, as go-marathon decodes them: the change accepted in the
	// root group, each of the 4 steps done (create a, b, c; then a, b, c
	// in turn), the deployment done.
	c.waitFor(10*time.Second, "go-marathon to see the deployment succeed", func() (bool, string) {
		got := seen()
		return got["deployment_success"] >= 1, fmt.Sprint(got)
	})
	if got := seen(); got["group_change_success /"] != 1 || got["deployment_step_success"] != 4 {
		t.Errorf("events seen by go-marathon: %v", got)
	}
	for _, pair := range [][2]string{{"/gm/a", "/gm/b"}, {"/gm/b", "/gm/c"}} {
		healthy, staged := healthySince(t, client, pair[0]), firstStaged(t, client, pair[1])
		if staged.Before(healthy) {
			t.Errorf("%s was staged at %s, before %s was healthy (%s)", pair[1], staged.Format(time.RFC3339Nano),
				pair[0], healthy.Format(time.RFC3339Nano))
		}
	}
	if a, b := firstStaged(t, client, "/gm/a"), firstStaged(t, client, "/gm/b"); b.Sub(a) < 3*time.Second {
		t.Errorf("b was staged %s after a, before a could be healthy (3 s)", b.Sub(a))
	}

	got, err := client.Group("/gm")
	if err != nil || got.ID != "/gm" || len(got.Apps) != 3 {
		t.Fatalf("Group: %+v %v", got, err)
	}
	if deps := got.Apps[1].Dependencies; len(deps) != 1 || deps[0] != "/gm/a" {
		t.Errorf("b's dependencies %v", deps)
	}
	all, err := client.Groups()
	if err != nil || len(all.Groups) != 1 || all.Groups[0].ID != "/gm" {
		t.Fatalf("Groups: %+v %v", all, err)
	}
	if ok, err := client.HasGroup("/nope"); err != nil || ok {
		t.Fatalf("HasGroup of a group that does not exist: %v %v", ok, err)
	}

	// scaleBy (go-marathon has no call for it): every app, rounded up.
	c.mustDo("PUT", "/v2/groups/gm", `{"scaleBy": 1.5}`, http.StatusOK, nil)
	if err := client.WaitOnGroup("/gm", 90*time.Second); err != nil {
		t.Fatalf("WaitOnGroup after scaleBy: %v", err)
	}
	t.Logf("scaled at %s", time.Since(start))
	for id, want := range map[string]int{"/gm/a": 2, "/gm/b": 2, "/gm/c": 3} {
		if n := len(c.waitRunning(id, want, 30*time.Second)); n != want {
			t.Errorf("%s: %d running after scaleBy, want %d", id, n, want)
		}
	}

	// UpdateGroup: the group is exactly what is sent: c goes, a and b
	// scale back.
	dep, err := client.UpdateGroup("/gm", gmGroup(false), false)
	if err != nil || dep.DeploymentID == "" {
		t.Fatalf("UpdateGroup: %+v %v", dep, err)
	}
	if err := client.WaitOnGroup("/gm", 90*time.Second); err != nil {
		t.Fatalf("WaitOnGroup after UpdateGroup: %v", err)
	}
	t.Logf("updated at %s", time.Since(start))
	c.waitFor(30*time.Second, "/gm/c gone", func() (bool, string) {
		code, _ := c.do("GET", "/v2/apps/gm/c", nil)
		return code == http.StatusNotFound, fmt.Sprintf("GET /v2/apps/gm/c: %d", code)
	})

	dep, err = client.DeleteGroup("/gm", false)
	if err != nil || dep.DeploymentID == "" {
		t.Fatalf("DeleteGroup: %+v %v", dep, err)
	}
	c.waitFor(30*time.Second, "every task of /gm gone", func() (bool, string) {
		n := len(c.tasks("/gm/a")) + len(c.tasks("/gm/b"))
		return n == 0, fmt.Sprintf("%d tasks", n)
	})
	if ok, err := client.HasGroup("/gm"); err != nil || ok {
		t.Fatalf("HasGroup after DeleteGroup: %v %v", ok, err)
	}
}

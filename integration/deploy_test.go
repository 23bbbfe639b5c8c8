package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hcReloadsNow is the HAProxy master's reload counter.
func hcReloadsNow(lb *lbNode) int { return lb.showProc().MasterReloads }

// hcLoadReport logs what a load run saw and fails the test on any failed
// request; for a defer, so that it reports also when the test fails half
// way.
func hcLoadReport(t *testing.T, lb *lbNode, load *lbLoad, loadStart time.Time, firstReloads int) {
	load.stop()
	loadFor := time.Since(loadStart)
	t.Logf("load: %d requests (%.0f/s) in %s, %d failed; %d ok on keep-alive connections, %d ok on new connections",
		load.ok.Load()+load.failed.Load(), float64(load.ok.Load())/loadFor.Seconds(), loadFor.Round(time.Millisecond),
		load.failed.Load(), load.okKeepAlive.Load(), load.ok.Load()-load.okKeepAlive.Load())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if last, err := lb.master.ShowProc(ctx); err == nil {
		t.Logf("HAProxy master reloads %d → %d; workers %v", firstReloads, last.MasterReloads, last.Workers)
	} else {
		t.Logf("HAProxy master: %v (lb exited: %v)", err, lb.exited())
	}
	load.mu.Lock()
	defer load.mu.Unlock()
	for _, d := range load.failures {
		t.Log("failed request:", d)
	}
	if f := load.failed.Load(); f != 0 {
		t.Errorf("%d failed requests; per phase: %v", f, load.byPhase)
	}
}

// TestRollingDeploysUnderLoad: 10 rolling deploys of a 4-instance app
// with an HTTP health check (new tasks are unhealthy for their first
// second), minimumHealthCapacity 1 and 0.5 in turn, under continuous load
// through HAProxy: no request fails, and once a deployment is done every
// new connection reaches a task of the new version.
func TestRollingDeploysUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	requireHAProxy(t)
	began := time.Now()
	c := startCluster(t, clusterOptions{agents: 3})
	lb := lbStart(c, lbNodeOptions{})
	servicePort := lbFreePort(t, lb.bindAddr)
	front := lb.front(servicePort)

	const appID = "/it/roll"
	app := lbServiceApp(appID, 4, nil, servicePort)
	app["env"] = map[string]string{"ECHO_UNHEALTHY_FOR": "1s", "DEPLOY": "0"}
	app["healthChecks"] = []map[string]any{hcCheck(30, 1, 3)}
	c.mustDo("POST", "/v2/apps", app, 201, nil)
	c.hcWaitHealthy(appID, 4, 30*time.Second)
	c.lbWaitServed(front, "", appID, 20*time.Second)
	first := hcReloadsNow(lb)

	load := lbStartLoad("http://"+front+"/", 4, 4)
	loadStart := time.Now()
	type result struct {
		mhc      float64
		took     time.Duration
		reloads  int
		requests int64
	}
	var results []result
	defer func() {
		for i, r := range results {
			t.Logf("deploy #%d (minimumHealthCapacity %g): %s, %d HAProxy reloads, %d requests meanwhile", i+1, r.mhc, r.took.Round(time.Millisecond), r.reloads, r.requests)
		}
		hcLoadReport(t, lb, load, loadStart, first)
		t.Logf("%d deploys; test took %s", len(results), time.Since(began).Round(time.Millisecond))
	}()

	for i := 1; i <= 10; i++ {
		mhc := 1.0
		if i%2 == 0 {
			mhc = 0.5
		}
		r0, n0 := hcReloadsNow(lb), load.ok.Load()+load.failed.Load()
		load.setPhase(fmt.Sprintf("deploy #%d (minimumHealthCapacity %g)", i, mhc))
		start := time.Now()
		var put struct {
			DeploymentID string `json:"deploymentId"`
		}
		c.mustDo("PUT", "/v2/apps"+appID, map[string]any{
			"env":             map[string]string{"ECHO_UNHEALTHY_FOR": "1s", "DEPLOY": strconv.Itoa(i)},
			"upgradeStrategy": map[string]any{"minimumHealthCapacity": mhc},
		}, 200, &put)
		if put.DeploymentID == "" {
			t.Fatalf("deploy #%d: no deploymentId", i)
		}
		view, ts := c.hcWaitHealthy(appID, 4, 40*time.Second)
		took := time.Since(start)
		load.setPhase(fmt.Sprintf("after deploy #%d", i))
		if view.Env["DEPLOY"] != strconv.Itoa(i) {
			t.Fatalf("deploy #%d: app env %v", i, view.Env)
		}
		if us := view.UpgradeStrategy; us.MinimumHealthCapacity != mhc || us.MaximumOverCapacity != 1 {
			t.Errorf("deploy #%d: upgradeStrategy %+v, want minimumHealthCapacity %g and the default maximumOverCapacity 1", i, us, mhc)
		}
		current := lbTaskSet(hcTasksAsAPI(ts))
		replies, failures := hcSample(front, 50)
		versions := map[string]int{}
		for _, r := range replies {
			versions[r.Version]++
			if !current[r.TaskID] {
				t.Errorf("after deploy #%d: task %s (version %s) answered; the app's tasks are %v", i, r.TaskID, r.Version, hcIDs(ts))
			}
		}
		if len(failures) > 0 || len(versions) != 1 || versions[view.Version] != 50 {
			t.Fatalf("after deploy #%d (app version %s): 50 new connections gave versions %v and failures %q", i, view.Version, versions, failures)
		}
		results = append(results, result{mhc: mhc, took: took, reloads: hcReloadsNow(lb) - r0, requests: load.ok.Load() + load.failed.Load() - n0})
	}
	load.setPhase("after the last deploy")
	c.lbWaitServed(front, "", appID, 20*time.Second)
	if ok := load.ok.Load(); ok < 2000 {
		t.Errorf("only %d successful requests under load", ok)
	}
}

func hcTasksAsAPI(ts []hcTask) []apiTask {
	out := make([]apiTask, len(ts))
	for i, t := range ts {
		out[i] = t.apiTask
	}
	return out
}

// hcDeployment is an entry of GET /v2/deployments.
type hcDeployment struct {
	ID             string   `json:"id"`
	AffectedApps   []string `json:"affectedApps"`
	CurrentActions []struct {
		Action  string `json:"action"`
		App     string `json:"app"`
		Waiting string `json:"waiting"`
	} `json:"currentActions"`
}

// TestFailingDeployHaltsAndRollsBack: a new version whose tasks never
// become healthy is deployed with the CLI, under load; the master halts
// the deployment, the CLI exits 1 saying it failed, the old tasks keep
// serving every request, and DELETE /v2/deployments/{id} rolls the app
// back to its old config with the old tasks, not restarted.
func TestFailingDeployHaltsAndRollsBack(t *testing.T) {
	requireHAProxy(t)
	began := time.Now()
	c := startCluster(t, clusterOptions{agents: 3})
	lb := lbStart(c, lbNodeOptions{})
	sse := hcFollowEvents(c)
	servicePort := lbFreePort(t, lb.bindAddr)
	front := lb.front(servicePort)

	const appID = "/it/fail"
	v1 := lbServiceApp(appID, 2, nil, servicePort)
	v1Env := map[string]string{"RELEASE": "v1"}
	v1["env"] = v1Env
	// v1's check is lenient: on a busy machine (2 CPUs, -race, the load)
	// a probe of a healthy task may time out now and then, and an old
	// task replaced for that would not be what this test is about.
	v1Check := hcCheck(30, 1, 5)
	v1Check["timeoutSeconds"] = 5
	v1["healthChecks"] = []map[string]any{v1Check}
	c.mustDo("POST", "/v2/apps", v1, 201, nil)
	v1View, v1Tasks := c.hcWaitHealthy(appID, 2, 30*time.Second)
	c.lbWaitServed(front, "", appID, 20*time.Second)
	v1IDs := hcIDs(v1Tasks)
	v1Set := lbTaskSet(hcTasksAsAPI(v1Tasks))
	v1PIDs := taskPIDs(c.dir, appID)
	slices.Sort(v1PIDs)
	first := hcReloadsNow(lb)

	load := lbStartLoad("http://"+front+"/", 4, 4)
	loadStart := time.Now()
	watch := hcStartWatch("http://"+front+"/", 4, func(r hcReply) error {
		if r.Version != v1View.Version || !v1Set[r.TaskID] {
			return fmt.Errorf("reply from task %s version %s; want one of v1's tasks %v, version %s", r.TaskID, r.Version, v1IDs, v1View.Version)
		}
		return nil
	})
	watchStopped := false
	stopWatch := func() {
		if watchStopped {
			return
		}
		watchStopped = true
		watch.stop()
		watch.mu.Lock()
		defer watch.mu.Unlock()
		t.Logf("version watch: %d replies, %d failed requests, %d wrong replies", watch.replies.Load(), watch.failed.Load(), watch.wrong.Load())
		for _, b := range watch.bad {
			t.Error("wrong reply:", b)
		}
		for _, e := range watch.errs {
			t.Error("failed request (version watch):", e)
		}
		if watch.replies.Load() == 0 {
			t.Error("the version watch got no reply")
		}
	}
	defer func() {
		stopWatch()
		hcLoadReport(t, lb, load, loadStart, first)
		t.Logf("test took %s", time.Since(began).Round(time.Millisecond))
	}()

	// v2 never becomes healthy.
	v2 := maps.Clone(v1)
	v2["env"] = map[string]string{"RELEASE": "v2", "ECHO_UNHEALTHY_FOR": "1h"}
	hc := hcCheck(1, 1, 2)
	v2["healthChecks"] = []map[string]any{hc}
	v2["backoffSeconds"] = 0.2
	file := filepath.Join(t.TempDir(), "v2.json")
	data, _ := json.Marshal(v2)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	load.setPhase("deploying v2")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cli := exec.CommandContext(ctx, atollBin, "app", "deploy", "-f", file, "--timeout", "90s", "--master", c.api)
	cli.Stdout, cli.Stderr = &stdout, &stderr
	deployStart := time.Now()
	err := cli.Run()
	cliTook := time.Since(deployStart)
	t.Logf("atoll app deploy took %s: %v\nstdout:\n%s\nstderr:\n%s", cliTook.Round(time.Millisecond), err, stdout.String(), stderr.String())
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "failed") {
		t.Fatalf("atoll app deploy of a never-healthy version: %v, stderr %q; want exit status 1 and \"failed\"", err, stderr.String())
	}

	// The deployment stays listed, halted.
	load.setPhase("v2 halted")
	var deps []hcDeployment
	c.mustDo("GET", "/v2/deployments", nil, 200, &deps)
	var halted hcDeployment
	for _, d := range deps {
		for _, a := range d.CurrentActions {
			if slices.Contains(d.AffectedApps, appID) && strings.HasPrefix(a.Waiting, "failed:") {
				halted = d
			}
		}
	}
	if len(deps) != 1 || halted.ID == "" {
		t.Fatalf("after the failed deploy /v2/deployments lists %+v; want one deployment of %s waiting \"failed: ...\"", deps, appID)
	}
	t.Logf("halted deployment %s: %+v", halted.ID, halted.CurrentActions)
	c.waitFor(5*time.Second, "deployment_failed on /v2/events", func() (bool, string) {
		_, ok := sse.find("deployment_failed", func(d map[string]any) bool { return d["id"] == halted.ID })
		return ok, sse.summary()
	})
	_, ts, err := c.hcApp(appID)
	if err != nil {
		t.Fatal(err)
	}
	byID := hcByID(ts)
	for _, id := range v1IDs {
		if task := byID[id]; task.State != "TASK_RUNNING" || !task.healthy() {
			t.Errorf("while halted, v1 task %s is %s healthy=%s; want running and healthy", id, task.State, hcHealth(task))
		}
	}
	v2Launched := map[string]bool{}
	sse.mu.Lock()
	for _, e := range sse.events {
		if e.Type == "status_update_event" && e.Data["appId"] == appID && !v1Set[fmt.Sprint(e.Data["taskId"])] {
			v2Launched[fmt.Sprint(e.Data["taskId"])] = true
		}
	}
	sse.mu.Unlock()
	t.Logf("while halted: tasks %s; %d v2 tasks were launched in all", hcDescribe(ts), len(v2Launched))
	if len(v2Launched) < 3 {
		t.Errorf("%d v2 tasks launched; the master halts after 3 failed in a row", len(v2Launched))
	}

	// Roll back.
	load.setPhase("rolling back")
	var rollback struct {
		DeploymentID string `json:"deploymentId"`
		Version      string `json:"version"`
	}
	c.mustDo("DELETE", "/v2/deployments/"+halted.ID, nil, 200, &rollback)
	rolledAt := time.Now()
	var view hcAppView
	c.waitFor(30*time.Second, "the rollback to v1 with v1's tasks and no deployment", func() (bool, string) {
		if ok, st := c.lbDeploymentsDone(); !ok {
			return false, st
		}
		var err error
		view, ts, err = c.hcApp(appID)
		if err != nil {
			return false, err.Error()
		}
		pids := taskPIDs(c.dir, appID)
		slices.Sort(pids)
		healthy := 0
		for _, task := range ts {
			if task.State == "TASK_RUNNING" && task.healthy() {
				healthy++
			}
		}
		return slices.Equal(hcIDs(ts), v1IDs) && healthy == 2 && slices.Equal(pids, v1PIDs),
			fmt.Sprintf("tasks %s, processes %v (v1's %v)", hcDescribe(ts), pids, v1PIDs)
	})
	t.Logf("rolled back (deployment %s) in %s", rollback.DeploymentID, time.Since(rolledAt).Round(time.Millisecond))
	if !maps.Equal(view.Env, v1Env) {
		t.Errorf("after the rollback the app's env is %v, want v1's %v", view.Env, v1Env)
	}
	if len(view.HealthChecks) != 1 || view.HealthChecks[0]["gracePeriodSeconds"] != float64(30) || view.HealthChecks[0]["maxConsecutiveFailures"] != float64(5) ||
		view.HealthChecks[0]["timeoutSeconds"] != float64(5) {
		t.Errorf("after the rollback the app's health checks are %v, want v1's", view.HealthChecks)
	}
	if view.TasksHealthy != 2 || view.TasksUnhealthy != 0 || view.TasksRunning != 2 {
		t.Errorf("after the rollback: tasksRunning %d, tasksHealthy %d, tasksUnhealthy %d; want 2, 2, 0", view.TasksRunning, view.TasksHealthy, view.TasksUnhealthy)
	}
	// Nothing of v2 is left anywhere, and the old tasks still serve.
	load.setPhase("after the rollback")
	c.lbWaitServed(front, "", appID, 10*time.Second)
	replies, failures := hcSample(front, 20)
	for _, r := range replies {
		if r.Version != v1View.Version || !v1Set[r.TaskID] {
			t.Errorf("after the rollback task %s version %s answered; want v1's", r.TaskID, r.Version)
		}
	}
	if len(failures) > 0 {
		t.Errorf("after the rollback: %q", failures)
	}
	stopWatch()
}

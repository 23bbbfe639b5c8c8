package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// result is one size's figures.
type result struct {
	n                            int
	appID                        string
	servicePort                  int
	duration                     time.Duration // PUT → no deployment, n healthy tasks of the new version
	wrk                          wrkResult
	reloadsBefore                int // the HAProxy master's count before the PUT
	reloadsAfter                 int // ...and once wrk stopped
	versions                     map[string]int
	newVersion                   string
	newOnly                      bool
	watchSent                    int
	watchFailures                []string
	watchNFailures               int
	firstNew                     time.Duration // after the PUT, on the prober's new connections
	lastOld                      time.Duration
	kaSent, kaConns, kaNFailures int // the keep-alive prober
	kaFailures                   []string
	firstKill, oldGone           time.Duration // after the PUT: first old task not running; no old task left (API)
}

func (r result) reloads() int { return r.reloadsAfter - r.reloadsBefore }

// nextServicePort is where the search for the next app's service port
// starts: below the kernel's ephemeral range (32768+), so no outgoing
// connection takes it before HAProxy binds it.
var nextServicePort = 10100

func servicePort() (int, error) {
	for p := nextServicePort; p < 32768; p++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		nextServicePort = p + 1
		return p, nil
	}
	return 0, errors.New("no free service port below 32768")
}

func appDef(o options, id string, n, port int, round string) map[string]any {
	labels := map[string]string{"HAPROXY_GROUP": "external"}
	if o.mode != "" {
		labels["HAPROXY_0_MODE"] = o.mode
	}
	return map[string]any{
		"id": id, "cmd": "atoll echo", "instances": n, "cpus": 0.01, "mem": 8,
		"portDefinitions": []map[string]any{{"port": port, "protocol": "tcp", "name": "http"}},
		"labels":          labels,
		"env":             envOf(round),
		"healthChecks": []map[string]any{{"protocol": "HTTP", "path": "/health", "portIndex": 0,
			"gracePeriodSeconds": 10, "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 3,
			"delaySeconds": int(o.hcDelay / time.Second)}},
		"upgradeStrategy": map[string]any{"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
	}
}

func envOf(round string) map[string]string {
	return map[string]string{"ECHO_UNHEALTHY_FOR": "1s", "BENCH_ROUND": round}
}

// deployOnce creates an app of n instances, rolls it under wrk, and
// deletes it.
func deployOnce(ctx context.Context, d *devCluster, o options, n int) (r result, err error) {
	r = result{n: n, appID: fmt.Sprintf("/bench/deploy-%d", n)}
	if r.servicePort, err = servicePort(); err != nil {
		return r, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", r.servicePort)
	if _, err := d.api.do(ctx, http.MethodPost, "/v2/apps", appDef(o, r.appID, n, r.servicePort, "1"), nil); err != nil {
		return r, err
	}
	defer func() {
		if err != nil && ctx.Err() == nil { // best effort: the next size needs the room
			_, _ = d.api.do(ctx, http.MethodDelete, "/v2/apps"+r.appID+"?force=true", nil, nil)
		}
	}()
	created := time.Now()
	oldV, err := waitSteady(ctx, d.api, o.timeout, r.appID, n, "", nil)
	if err != nil {
		return r, err
	}
	if err := waitServed(ctx, o.timeout, url, r.appID, oldV, 20); err != nil {
		return r, err
	}
	fmt.Printf("\n%s: %d instances healthy and served on :%d in %s\n", r.appID, n, r.servicePort, time.Since(created).Round(time.Millisecond))

	if r.reloadsBefore, err = masterReloads(ctx, d.socket); err != nil {
		return r, err
	}
	var w *wrkRun
	if o.conns > 0 { // --conns 0: no wrk, to tell its load from the deploy's
		if w, err = startWrk(ctx, url, o.threads, o.conns, o.timeout+2*o.settle+30*time.Second); err != nil {
			return r, err
		}
	}
	err = sleep(ctx, o.settle)
	if err == nil {
		err = rollOut(ctx, d, o, &r, url, oldV)
	}
	var res wrkResult
	var werr error
	if w != nil {
		res, werr = w.stop()
	}
	if err != nil {
		return r, err
	}
	if r.wrk = res; werr != nil {
		return r, werr
	}
	if r.reloadsAfter, err = masterReloads(ctx, d.socket); err != nil {
		return r, err
	}
	r.versions = sample(ctx, url, 50)
	r.newOnly = r.versions[r.newVersion] == 50
	if r.wrk.raw != "" && (r.wrk.failed() > 0 || r.watchNFailures > 0 || r.kaNFailures > 0) {
		fmt.Printf("wrk's output:\n%s\n", r.wrk.raw)
	}
	return r, deleteApp(ctx, d.api, o.timeout, r.appID)
}

// rollOut changes the app's env (a rolling deploy) with a prober watching
// the service port, waits until the deploy is over (no deployment, n
// healthy tasks of the new version), then lets wrk and the prober run for
// the settle time.
func rollOut(ctx context.Context, d *devCluster, o options, r *result, url, oldV string) error {
	wctx, stopWatch := context.WithCancel(ctx)
	start := time.Now()
	pw := startWatch(wctx, url, oldV, start)
	kw := startKAWatch(wctx, fmt.Sprintf("127.0.0.1:%d", r.servicePort), start)
	defer func() { stopWatch(); pw.wait(); kw.wait() }()
	var put struct {
		DeploymentID string `json:"deploymentId"`
		Version      string `json:"version"`
	}
	if _, err := d.api.do(ctx, http.MethodPut, "/v2/apps"+r.appID, map[string]any{"env": envOf("2")}, &put); err != nil {
		return err
	}
	r.newVersion = put.Version
	r.firstKill, r.oldGone = -1, -1
	observe := func(s appState) {
		old, killing := 0, 0
		for _, t := range s.tasks {
			if t.Version != put.Version {
				old++
				if t.State != "TASK_RUNNING" {
					killing++
				}
			}
		}
		if r.firstKill < 0 && (killing > 0 || old < r.n) {
			r.firstKill = time.Since(start)
		}
		if r.oldGone < 0 && old == 0 {
			r.oldGone = time.Since(start)
		}
	}
	if _, err := waitSteady(ctx, d.api, o.timeout, r.appID, r.n, put.Version, observe); err != nil {
		return fmt.Errorf("deployment %s: %w", put.DeploymentID, err)
	}
	r.duration = time.Since(start)
	if err := sleep(ctx, o.settle); err != nil {
		return err
	}
	stopWatch()
	pw.wait()
	kw.wait()
	r.kaSent, r.kaConns, r.kaNFailures, r.kaFailures = kw.sent, kw.conns, kw.nFailures, kw.failures
	pw.mu.Lock()
	defer pw.mu.Unlock()
	r.watchSent, r.watchFailures, r.watchNFailures = pw.sent, pw.failures, pw.nFailures
	r.firstNew, r.lastOld = pw.firstNew, pw.lastOld
	return nil
}

// waitSteady waits until no deployment runs and the app has exactly n
// healthy running tasks of version (its current one if ""), and returns
// that version.
func waitSteady(ctx context.Context, a *api, timeout time.Duration, id string, n int, version string, observe func(appState)) (string, error) {
	var v string
	err := waitFor(ctx, timeout, fmt.Sprintf("%s: %d healthy tasks, no deployment", id, n), func() (bool, string, error) {
		s, err := a.state(ctx, id)
		if err != nil {
			return false, "", err
		}
		v = s.app.Version
		if observe != nil {
			observe(s)
		}
		ok, st := s.steady(n, version)
		return ok, st, nil
	})
	return v, err
}

// deleteApp deletes the app and waits until it and its tasks are gone.
func deleteApp(ctx context.Context, a *api, timeout time.Duration, id string) error {
	if _, err := a.do(ctx, http.MethodDelete, "/v2/apps"+id, nil, nil); err != nil {
		return err
	}
	return waitFor(ctx, timeout, id+" deleted", func() (bool, string, error) {
		var deps []any
		if _, err := a.get(ctx, "/v2/deployments", &deps); err != nil {
			return false, "", err
		}
		var tasks struct {
			Tasks []taskView `json:"tasks"`
		}
		if _, err := a.get(ctx, "/v2/tasks", &tasks); err != nil {
			return false, "", err
		}
		code, _ := a.get(ctx, "/v2/apps"+id, nil)
		return len(deps) == 0 && len(tasks.Tasks) == 0 && code == http.StatusNotFound,
			fmt.Sprintf("%d deployments, %d tasks, GET app: %d", len(deps), len(tasks.Tasks), code), nil
	})
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

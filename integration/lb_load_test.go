package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lbLoad is a load generator: clients that GET one URL continuously, half
// of them over keep-alive connections, half on a new connection each
// time. A failed request is a transport error or a status other than 200;
// Go's http.Transport retries what it retries by itself, nothing more.
type lbLoad struct {
	url   string
	start time.Time
	phase atomic.Pointer[string]

	ok, failed  atomic.Int64
	okKeepAlive atomic.Int64
	mu          sync.Mutex
	failures    []string       // the first lbLoadDetail, in detail
	byPhase     map[string]int // failures per phase

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const lbLoadDetail = 20

func lbStartLoad(url string, keepAlive, newConn int) *lbLoad {
	l := &lbLoad{url: url, start: time.Now(), byPhase: map[string]int{}}
	l.setPhase("start")
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for i := range keepAlive + newConn {
		kind := "keep-alive"
		if i >= keepAlive {
			kind = "new-conn"
		}
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: kind == "new-conn", MaxIdleConnsPerHost: 1,
		}}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer client.CloseIdleConnections()
			for ctx.Err() == nil {
				l.one(ctx, client, fmt.Sprintf("%s#%d", kind, i))
			}
		}()
	}
	return l
}

func (l *lbLoad) setPhase(p string) { l.phase.Store(&p) }

func (l *lbLoad) one(ctx context.Context, client *http.Client, who string) {
	phase := *l.phase.Load()
	began := time.Now()
	req, err := http.NewRequestWithContext(ctx, "GET", l.url, nil)
	if err != nil {
		panic(err)
	}
	resp, err := client.Do(req)
	if err == nil {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %d: %.200q", resp.StatusCode, body)
		}
		if err == nil && !strings.Contains(string(body), `"taskId"`) {
			err = fmt.Errorf("not an echo reply: %.200q", body)
		}
	}
	if ctx.Err() != nil {
		return // stopping: a request cut short by the test is no failure
	}
	if err == nil {
		l.ok.Add(1)
		if strings.HasPrefix(who, "keep-alive") {
			l.okKeepAlive.Add(1)
		}
		return
	}
	l.failed.Add(1)
	now := *l.phase.Load()
	if now != phase {
		phase += " → " + now
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byPhase[phase]++
	if len(l.failures) < lbLoadDetail {
		l.failures = append(l.failures, fmt.Sprintf("at %s [%s] (took %s) %s during %q: %v",
			began.Sub(l.start).Round(time.Millisecond), began.UTC().Format("15:04:05.000"), time.Since(began).Round(time.Millisecond), who, phase, err))
	}
}

func (l *lbLoad) stop() {
	l.cancel()
	l.wg.Wait()
}

// TestLBLoadZeroFailures: under continuous load (keep-alive and
// new-connection clients), 20 scale changes, 5 rolling restarts and 5
// changes that force a reload give zero failed requests. The app has an
// HTTP health check, as marathon-lb's zero-downtime deployments ask: a
// new task gets traffic once it answers, and a restart kills old tasks
// only when their replacements are healthy.
//
// Without a health check a task is TASK_RUNNING, and in HAProxy, as soon as
// its process started, some 150 ms before `atoll echo` listens; a restart
// then drops a few new connections, as it does with Marathon and
// marathon-lb, whose docs also ask for health checks. Not tested here.
func TestLBLoadZeroFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	requireHAProxy(t)
	began := time.Now()
	c := startCluster(t, clusterOptions{agents: 3})
	lb := lbStart(c, lbNodeOptions{})
	servicePort := lbFreePort(t, lb.bindAddr)
	front := lb.front(servicePort)
	const appID = "/it/load"
	app := lbServiceApp(appID, 3, nil, servicePort)
	app["healthChecks"] = []map[string]any{{"protocol": "HTTP", "path": "/health", "portIndex": 0,
		"gracePeriodSeconds": 5, "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 3, "delaySeconds": 0}}
	c.mustDo("POST", "/v2/apps", app, 201, nil)
	ts := c.lbWaitSteady(appID, 3, 30*time.Second)
	c.lbWaitServed(front, "", appID, 20*time.Second)
	first := lb.showProc()

	load := lbStartLoad("http://"+front+"/", 4, 4)
	loadStart := time.Now()
	var scaleReloads, restartReloads, forcedReloads int
	var restarts, forced int
	// Stop the load and report, also when the test fails half way.
	defer func() {
		load.stop()
		loadFor := time.Since(loadStart)
		t.Logf("%d requests (%.0f/s) in %s, %d failed; %d restarts, %d reload-forcing changes; test took %s",
			load.ok.Load()+load.failed.Load(), float64(load.ok.Load())/loadFor.Seconds(), loadFor.Round(time.Millisecond),
			load.failed.Load(), restarts, forced, time.Since(began).Round(time.Millisecond))
		t.Logf("successful requests: %d on keep-alive connections, %d on new connections", load.okKeepAlive.Load(), load.ok.Load()-load.okKeepAlive.Load())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if last, err := lb.master.ShowProc(ctx); err == nil {
			t.Logf("HAProxy master reloads %d → %d: %d by the forcing changes, %d during scale changes, %d during restarts; workers %v",
				first.MasterReloads, last.MasterReloads, forcedReloads, scaleReloads, restartReloads, last.Workers)
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
	}()

	// The reload-forcing changes: a second app with a service port of its
	// own is created, its balance changed three times, and deleted.
	auxPort := lbFreePort(t, lb.bindAddr)
	auxLabels := func(balance string) map[string]any {
		l := map[string]any{"HAPROXY_GROUP": "external"}
		if balance != "" {
			l["HAPROXY_0_BALANCE"] = balance
		}
		return map[string]any{"labels": l}
	}
	reloadOps := []struct {
		name string
		do   func()
	}{
		{"create /it/aux", func() { c.mustDo("POST", "/v2/apps", lbServiceApp("/it/aux", 0, nil, auxPort), 201, nil) }},
		{"/it/aux balance leastconn", func() { c.mustDo("PUT", "/v2/apps/it/aux", auxLabels("leastconn"), 200, nil) }},
		{"/it/aux balance source", func() { c.mustDo("PUT", "/v2/apps/it/aux", auxLabels("source"), 200, nil) }},
		{"/it/aux balance first", func() { c.mustDo("PUT", "/v2/apps/it/aux", auxLabels("first"), 200, nil) }},
		{"delete /it/aux", func() { c.mustDo("DELETE", "/v2/apps/it/aux", nil, 200, nil) }},
	}

	sizes := []int{4, 2, 5, 3, 5, 2, 4, 3, 5, 2, 3, 4, 2, 5, 3, 4, 2, 5, 4, 3}
	reloadsNow := func() int { return lb.showProc().MasterReloads }
	n := 3
	for i, size := range sizes {
		r0 := reloadsNow()
		load.setPhase(fmt.Sprintf("scale #%d %d→%d", i+1, n, size))
		c.mustDo("PUT", "/v2/apps/it/load", map[string]any{"instances": size}, 200, nil)
		ts = c.lbWaitSteady(appID, size, 30*time.Second)
		n = size
		scaleReloads += reloadsNow() - r0

		if i%4 == 1 {
			r0 := reloadsNow()
			restarts++
			load.setPhase(fmt.Sprintf("restart #%d (%d tasks)", restarts, n))
			old := lbTaskSet(ts)
			c.mustDo("POST", "/v2/apps/it/load/restart", nil, 200, nil)
			c.waitFor(60*time.Second, fmt.Sprintf("restart #%d to replace every task", restarts), func() (bool, string) {
				ts = c.tasks(appID)
				kept := 0
				for _, task := range ts {
					if old[task.ID] {
						kept++
					}
				}
				return kept == 0, fmt.Sprintf("%d tasks, %d old", len(ts), kept)
			})
			ts = c.lbWaitSteady(appID, n, 30*time.Second)
			restartReloads += reloadsNow() - r0
		}
		if i%4 == 3 {
			op := reloadOps[forced]
			forced++
			load.setPhase(fmt.Sprintf("reload #%d: %s", forced, op.name))
			r0 := reloadsNow()
			op.do()
			c.waitFor(15*time.Second, "a reload after "+op.name, func() (bool, string) {
				info := lb.showProc()
				return info.MasterReloads > r0 && len(info.Workers) == 1, fmt.Sprintf("%+v", info)
			})
			c.waitFor(15*time.Second, "no deployment", c.lbDeploymentsDone)
			forcedReloads += reloadsNow() - r0
		}
	}
	load.setPhase("after the last change")
	c.lbWaitServed(front, "", appID, 20*time.Second)
	if restarts != 5 || forced != 5 {
		t.Errorf("%d restarts and %d reload-forcing changes, want 5 and 5", restarts, forced)
	}
	if forcedReloads < 5 {
		t.Errorf("%d reloads by the 5 forcing changes, want at least 5", forcedReloads)
	}
	if ok := load.ok.Load(); ok < 2000 {
		t.Errorf("only %d successful requests under load", ok)
	}
}

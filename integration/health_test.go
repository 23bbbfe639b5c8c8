package integration

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestHealthGatesTraffic: an app with an HTTP health check gets no traffic
// from HAProxy and no DNS record while its tasks run but are not healthy
// yet; once healthy, both tasks are served and listed. A task whose
// /health starts failing leaves HAProxy and DNS, is killed after
// maxConsecutiveFailures and replaced by a task that is served once
// healthy. The API's health counts and results and /v2/events follow.
func TestHealthGatesTraffic(t *testing.T) {
	requireHAProxy(t)
	requireDig(t)
	began := time.Now()
	c := startCluster(t, clusterOptions{agents: 3})
	lb := lbStart(c, lbNodeOptions{})
	dig := hcStartDNS(c)
	sse := hcFollowEvents(c)
	servicePort := lbFreePort(t, lb.bindAddr)
	front := lb.front(servicePort)

	const appID, dnsName = "/it/hc", "hc.it"
	app := lbServiceApp(appID, 2, nil, servicePort)
	app["constraints"] = [][]string{{"hostname", "UNIQUE"}} // one IP per task in DNS
	app["env"] = map[string]string{"ECHO_UNHEALTHY_FOR": "4s"}
	app["healthChecks"] = []map[string]any{hcCheck(30, 1, 3)}
	c.mustDo("POST", "/v2/apps", app, 201, nil)
	created := time.Now()

	// Running but not healthy: probe HAProxy and DNS until both tasks are
	// healthy. A reply, or a DNS record, is a violation when the API
	// still calls that task not healthy after the reply came: the master
	// publishes the health change before HAProxy or DNS can act on it.
	var (
		probes, refused, directOK int
		firstRunning, healthyAt   time.Time
	)
	c.waitFor(30*time.Second, "both tasks healthy (probing HAProxy and DNS meanwhile)", func() (bool, string) {
		_, ts, err := c.hcApp(appID)
		if err != nil {
			return false, err.Error()
		}
		running, healthy := 0, 0
		for _, task := range ts {
			if task.State == "TASK_RUNNING" {
				running++
			}
			if task.healthy() {
				healthy++
			}
		}
		if healthy == 2 && len(ts) == 2 {
			healthyAt = time.Now()
			return true, ""
		}
		if running < 2 || healthy > 0 {
			return false, hcDescribe(ts)
		}
		if firstRunning.IsZero() {
			firstRunning = time.Now()
		}
		got, other := lbAsk(front, "", 4)
		// A round in which a task turned healthy part-way is checked
		// below but not counted: it tested the transition, not the
		// unhealthy window.
		if len(got) == 0 {
			probes++
			refused += len(other)
		}
		srv, a, dnsErr := hcDNSTargets(dig, dnsName)
		if dnsErr != nil {
			t.Errorf("dig while unhealthy: %v", dnsErr)
		}
		// Each task's own server answers: only health keeps it out.
		for _, task := range ts {
			if _, err := hcGet(t.Context(), hcDirect, "http://"+task.addr()+"/"); err == nil {
				directOK++
			}
		}
		app2, after, err := c.hcApp(appID)
		if err != nil {
			return false, err.Error()
		}
		byID := hcByID(after)
		for _, id := range got {
			if !byID[id].healthy() {
				t.Fatalf("HAProxy sent a request to task %s, which is %s and healthy=%s", id, byID[id].State, hcHealth(byID[id]))
			}
		}
		for _, o := range other {
			// The app's frontend is in TCP mode (no HAPROXY_0_MODE label,
			// as marathon-lb): with no server up HAProxy closes the
			// connection; in HTTP mode it would answer 503.
			if !hcRefusal(o) {
				t.Fatalf("while no task is healthy, HAProxy answered %s; want 503 or a closed connection", o)
			}
		}
		healthyNow := 0
		for _, task := range after {
			if task.healthy() {
				healthyNow++
			}
		}
		if healthyNow == 0 && (len(srv) > 0 || len(a) > 0) {
			t.Fatalf("DNS lists SRV %v, A %v while no task is healthy: %s", srv, a, hcDescribe(after))
		}
		if healthyNow == 0 && app2.TasksHealthy != 0 {
			t.Fatalf("tasksHealthy %d while no task is healthy: %s", app2.TasksHealthy, hcDescribe(after))
		}
		return false, fmt.Sprintf("%d probes while unhealthy; %s", probes, hcDescribe(after))
	})
	t.Logf("unhealthy window: running at +%s, healthy at +%s; %d probe rounds in it, %d HAProxy refusals, %d direct answers from the tasks",
		firstRunning.Sub(created).Round(time.Millisecond), healthyAt.Sub(created).Round(time.Millisecond), probes, refused, directOK)
	if probes < 3 || refused < 4*probes || directOK == 0 {
		t.Fatalf("the unhealthy window was not tested: %d probe rounds, %d refusals, %d direct answers; want >= 3, all refused, > 0", probes, refused, directOK)
	}

	// Healthy: both served through HAProxy and listed in DNS.
	c.lbWaitServed(front, "", appID, 20*time.Second)
	appView, ts := c.hcWaitHealthy(appID, 2, 10*time.Second)
	addrs, ips := hcAddrs(ts...)
	c.waitFor(10*time.Second, "DNS to list both tasks", func() (bool, string) {
		srv, a, err := hcDNSTargets(dig, dnsName)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(srv, addrs) && slices.Equal(a, ips), fmt.Sprintf("SRV %v A %v, want %v %v", srv, a, addrs, ips)
	})
	if appView.TasksRunning != 2 || appView.TasksHealthy != 2 || appView.TasksUnhealthy != 0 {
		t.Errorf("healthy app: tasksRunning %d, tasksHealthy %d, tasksUnhealthy %d; want 2, 2, 0", appView.TasksRunning, appView.TasksHealthy, appView.TasksUnhealthy)
	}
	for _, task := range ts {
		r := task.HealthCheckResults
		if len(r) != 1 || !r[0].Alive || r[0].ConsecutiveFailures != 0 || r[0].FirstSuccess == nil || r[0].TaskID != task.ID {
			t.Errorf("healthy task %s: healthCheckResults %+v; want one, alive, 0 failures, a first success", task.ID, r)
		}
	}
	for _, task := range ts {
		c.waitFor(5*time.Second, "health_status_changed_event alive=true for "+task.ID, func() (bool, string) {
			_, ok := sse.find("health_status_changed_event", func(d map[string]any) bool {
				return d["taskId"] == task.ID && d["alive"] == true && d["appId"] == appID
			})
			return ok, sse.summary()
		})
	}

	// One task's /health fails: it leaves HAProxy and DNS, then goes.
	victim, survivor := ts[0], ts[1]
	survivorAddrs, survivorIPs := hcAddrs(survivor)
	if err := hcPost(victim.addr(), "/health/fail"); err != nil {
		t.Fatal(err)
	}
	failedAt := time.Now()
	var sawAPI, outOfLB, outOfDNS time.Duration
	c.waitFor(15*time.Second, fmt.Sprintf("task %s to show unhealthy in the API, leave HAProxy and leave DNS", victim.ID), func() (bool, string) {
		appView, ts, err := c.hcApp(appID)
		if err != nil {
			return false, err.Error()
		}
		byID := hcByID(ts)
		if v, ok := byID[victim.ID]; ok && sawAPI == 0 {
			r := v.HealthCheckResults
			if len(r) == 1 && !r[0].Alive && r[0].ConsecutiveFailures >= 1 && r[0].LastFailureCause != "" && r[0].FirstSuccess != nil &&
				v.Healthy != nil && !*v.Healthy && appView.TasksUnhealthy >= 1 && appView.TasksHealthy >= 1 {
				sawAPI = time.Since(failedAt)
				t.Logf("API after the failure: tasksHealthy %d, tasksUnhealthy %d; victim %s alive=%v consecutiveFailures=%d cause %q",
					appView.TasksHealthy, appView.TasksUnhealthy, v.State, r[0].Alive, r[0].ConsecutiveFailures, r[0].LastFailureCause)
			}
		}
		got, other := lbAsk(front, "", 8)
		reached := slices.Contains(got, victim.ID)
		if outOfLB != 0 && reached {
			t.Errorf("HAProxy sent a request to %s again, %s after the failure", victim.ID, time.Since(failedAt))
		}
		if outOfLB == 0 && !reached && slices.Equal(got, []string{survivor.ID}) && len(other) == 0 {
			outOfLB = time.Since(failedAt)
		}
		srv, a, err := hcDNSTargets(dig, dnsName)
		if err != nil {
			return false, err.Error()
		}
		listed := slices.Contains(srv, victim.addr())
		if outOfDNS != 0 && listed {
			t.Errorf("DNS lists %s again, %s after the failure", victim.addr(), time.Since(failedAt))
		}
		if outOfDNS == 0 && slices.Equal(srv, survivorAddrs) && slices.Equal(a, survivorIPs) {
			outOfDNS = time.Since(failedAt)
		}
		return sawAPI != 0 && outOfLB != 0 && outOfDNS != 0,
			fmt.Sprintf("API seen %v, out of HAProxy %v (reached %v, other %q), out of DNS %v (SRV %v, A %v); tasks %s",
				sawAPI != 0, outOfLB != 0, got, other, outOfDNS != 0, srv, a, hcDescribe(ts))
	})

	// Killed and replaced; the replacement is served once healthy.
	var replacement hcTask
	c.waitFor(30*time.Second, "a healthy replacement of "+victim.ID, func() (bool, string) {
		_, ts, err := c.hcApp(appID)
		if err != nil {
			return false, err.Error()
		}
		ok := len(ts) == 2
		for _, task := range ts {
			switch {
			case task.ID == victim.ID:
				ok = false
			case task.ID != survivor.ID:
				replacement = task
				ok = ok && task.healthy() && task.State == "TASK_RUNNING"
			}
		}
		return ok && replacement.ID != "", hcDescribe(ts)
	})
	replacedAt := time.Since(failedAt)
	c.lbWaitServed(front, "", appID, 20*time.Second)
	appView, ts = c.hcWaitHealthy(appID, 2, 10*time.Second)
	if !slices.Equal(hcIDs(ts), hcIDs([]hcTask{survivor, replacement})) {
		t.Fatalf("tasks %v, want the survivor %s and the replacement %s", hcIDs(ts), survivor.ID, replacement.ID)
	}
	if appView.TasksHealthy != 2 || appView.TasksUnhealthy != 0 {
		t.Errorf("after the replacement: tasksHealthy %d, tasksUnhealthy %d; want 2, 0", appView.TasksHealthy, appView.TasksUnhealthy)
	}
	addrs, ips = hcAddrs(ts...)
	c.waitFor(10*time.Second, "DNS to list the survivor and the replacement", func() (bool, string) {
		srv, a, err := hcDNSTargets(dig, dnsName)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(srv, addrs) && slices.Equal(a, ips), fmt.Sprintf("SRV %v A %v, want %v %v", srv, a, addrs, ips)
	})

	// The event stream told the story.
	for _, want := range []struct {
		what  string
		typ   string
		match func(map[string]any) bool
	}{
		{"victim alive=false", "health_status_changed_event", func(d map[string]any) bool { return d["taskId"] == victim.ID && d["alive"] == false }},
		{"victim killed", "status_update_event", func(d map[string]any) bool {
			return d["taskId"] == victim.ID && (d["taskStatus"] == "TASK_KILLING" || d["taskStatus"] == "TASK_KILLED")
		}},
		{"replacement alive=true", "health_status_changed_event", func(d map[string]any) bool { return d["taskId"] == replacement.ID && d["alive"] == true }},
	} {
		c.waitFor(5*time.Second, "/v2/events: "+want.what, func() (bool, string) {
			_, ok := sse.find(want.typ, want.match)
			return ok, sse.summary()
		})
	}
	if e, ok := sse.find("health_status_changed_event", func(d map[string]any) bool { return d["taskId"] == victim.ID && d["alive"] == false }); ok {
		t.Logf("/v2/events: victim alive=false %s after the failure", e.At.Sub(failedAt).Round(time.Millisecond))
	}
	t.Logf("after POST /health/fail: unhealthy in the API after %s, out of HAProxy after %s, out of DNS after %s, healthy replacement after %s; events %s; test took %s",
		sawAPI.Round(time.Millisecond), outOfLB.Round(time.Millisecond), outOfDNS.Round(time.Millisecond), replacedAt.Round(time.Millisecond),
		sse.summary(), time.Since(began).Round(time.Millisecond))
}

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/lbsync"
)

// lbeNode is an `atoll lb` process started by these tests, with its
// /metrics and the LBReports it publishes on NATS.
type lbeNode struct {
	t       *testing.T
	dir     string
	metrics string // host:port of /metrics
	reports chan events.LBReport
}

// lbeStart subscribes to the cluster's LB reports, then starts `atoll lb`
// following c, with its config in its own folder and extra flags.
func lbeStart(c *cluster, extra ...string) *lbeNode {
	t := c.t
	t.Helper()
	n := &lbeNode{t: t, dir: filepath.Join(c.dir, "haproxy-"+strconv.Itoa(len(extra))), metrics: freeAddr(t),
		reports: make(chan events.LBReport, 64)}
	// Reports are the master's to hear: listen with a master's credential.
	nc := c.nats.connect(natsauth.RoleMaster, "report-listener")
	_, err := nc.Subscribe(events.Subjects{}.LBReports(), func(m *nats.Msg) {
		var r events.LBReport
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Errorf("undecodable LB report %q: %v", m.Data, err)
			return
		}
		select {
		case n.reports <- r:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	_, httpPort, _ := net.SplitHostPort(freeAddr(t))
	args := append(append([]string{"lb"}, c.nats.args(natsauth.RoleSidecar, "it-node")...), "--haproxy-config", filepath.Join(n.dir, "haproxy.cfg"),
		"--bind-addr", "127.0.0.1", "--http-port", httpPort, "--stats", freeAddr(t), "--min-reload-interval", "100ms",
		"--metrics-addr", n.metrics, "--node", "it-node", "--reconcile-interval", "1s")
	args = append(args, extra...)
	lb := c.start("lb", args...)
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(lb.log)
			t.Logf("---- lb log (last 4 KB) ----\n%s", tail(data, 4096))
		}
		c.signal(lb, syscall.SIGTERM)
	})
	return n
}

// metric reads one unlabelled sample from the lb's /metrics (-1 when it
// cannot).
func (n *lbeNode) metric(name string) float64 {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + n.metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return -1
}

// waitReport waits for a report that match accepts.
func (n *lbeNode) waitReport(what string, match func(events.LBReport) bool) events.LBReport {
	n.t.Helper()
	deadline := time.After(20 * time.Second)
	var seen []events.LBReport
	for {
		select {
		case r := <-n.reports:
			if match(r) {
				return r
			}
			seen = append(seen, r)
		case <-deadline:
			n.t.Fatalf("no LB report %s on NATS (saw %+v)", what, seen)
		}
	}
}

// workers asks the master for its current workers; the master socket is
// briefly gone while the master re-executes itself for a reload.
func (n *lbeNode) workers() []int {
	n.t.Helper()
	p := &lbsync.Process{MasterSocket: filepath.Join(n.dir, "master.sock")}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := p.ShowProc(ctx)
		cancel()
		if err == nil && len(info.Workers) > 0 {
			return info.Workers
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("show proc: %+v %v", info, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *lbeNode) config() string {
	data, _ := os.ReadFile(filepath.Join(n.dir, "haproxy.cfg"))
	return string(data)
}

// lbeDeploy posts a one-task echo app on a free service port and waits
// until HAProxy serves it there; it returns the service address.
func lbeDeploy(c *cluster, id string, labels map[string]string) string {
	c.t.Helper()
	_, portStr, _ := net.SplitHostPort(freeAddr(c.t))
	port, _ := strconv.Atoi(portStr)
	app := echoApp(id, 1)
	app["portDefinitions"] = []map[string]any{{"port": port}}
	all := map[string]string{"HAPROXY_GROUP": "external"}
	for k, v := range labels {
		all[k] = v
	}
	app["labels"] = all
	c.mustDo("POST", "/v2/apps", app, 201, nil)
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// lbeWaitServed waits until HAProxy at front reaches exactly the one
// running task of appID. The task is read on every try: a first task may
// fail (its port taken by another test's task) and be replaced.
func lbeWaitServed(c *cluster, appID, front string) {
	c.t.Helper()
	c.waitFor(30*time.Second, "HAProxy to serve "+appID+" on "+front, func() (bool, string) {
		var running []string
		for _, task := range c.tasks(appID) {
			if task.State == "TASK_RUNNING" {
				running = append(running, task.ID)
			}
		}
		got := servedBy(front, 4)
		return len(running) == 1 && slices.Equal(got, running), fmt.Sprintf("served by %v, running %v", got, running)
	})
}

// TestLBTemplateErrorKeepsServing: with --templates-dir, a template with a
// syntax error is refused and reported (metric, LBReport on NATS) while
// HAProxy keeps serving with the same worker; a new app is still served,
// rendered with the set in use; fixing the file takes effect.
func TestLBTemplateErrorKeepsServing(t *testing.T) {
	requireHAProxy(t)
	c := startCluster(t, clusterOptions{agents: 1})
	tdir := t.TempDir()
	writeT := func(name, text string) {
		if err := os.WriteFile(filepath.Join(tdir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeT("HAPROXY_FRONTEND_BACKEND_GLUE", "  default_backend {{.Backend}}\n")
	lb := lbeStart(c, "--templates-dir", tdir)

	frontA := lbeDeploy(c, "/it/tmpl-a", nil)
	lbeWaitServed(c, "/it/tmpl-a", frontA)
	if !strings.Contains(lb.config(), "default_backend it_tmpl_a_") {
		t.Fatalf("the templates dir's override is not in use:\n%s", lb.config())
	}
	workers := lb.workers()

	writeT("HAPROXY_BACKEND_HEAD", "\nbackend {{.Backend\n")
	r := lb.waitReport("for the broken template", func(r events.LBReport) bool { return r.AppID == "" })
	if r.Node != "it-node" || r.PortIndex != -1 || !strings.Contains(r.Error, "HAPROXY_BACKEND_HEAD") {
		t.Errorf("report %+v: want node it-node, port -1 and the template's name", r)
	}
	c.waitFor(10*time.Second, "the refusal in /metrics", func() (bool, string) {
		v := lb.metric("atoll_lb_template_set_refusals_total")
		return v >= 1, fmt.Sprint(v)
	})
	if got := servedBy(frontA, 4); len(got) != 1 {
		t.Fatalf("A not served after the broken template: %v", got)
	}
	if got := lb.workers(); !slices.Equal(got, workers) {
		t.Fatalf("workers %v -> %v: the broken template reloaded HAProxy", workers, got)
	}

	// New apps still flow, rendered with the set in use.
	frontB := lbeDeploy(c, "/it/tmpl-b", nil)
	lbeWaitServed(c, "/it/tmpl-b", frontB)
	if cfg := lb.config(); !strings.Contains(cfg, "default_backend it_tmpl_b_") || strings.Contains(cfg, "{{") {
		t.Fatalf("B not rendered with the set in use:\n%s", cfg)
	}

	// Fixed: the new set is taken.
	writeT("HAPROXY_BACKEND_HEAD", "\nbackend {{.Backend}}\n  # fixed template\n  balance {{.Balance}}\n  mode {{.Mode}}\n")
	c.waitFor(15*time.Second, "the fixed template in the config", func() (bool, string) {
		return strings.Count(lb.config(), "# fixed template") == 2, "not yet"
	})
	lbeWaitServed(c, "/it/tmpl-a", frontA)
	lbeWaitServed(c, "/it/tmpl-b", frontB)
}

// TestLBBadLabelLeftOut: an app whose label makes `haproxy -c` fail is
// left out and reported; the other apps keep being served and updated (a
// new app needs a reload); fixing the label brings the app in.
func TestLBBadLabelLeftOut(t *testing.T) {
	requireHAProxy(t)
	c := startCluster(t, clusterOptions{agents: 1})
	lb := lbeStart(c)

	frontA := lbeDeploy(c, "/it/label-a", nil)
	lbeWaitServed(c, "/it/label-a", frontA)

	bad := map[string]string{"HAPROXY_0_BIND_ADDR": "127.0.0.1", "HAPROXY_0_BIND_OPTIONS": "no-such-keyword"}
	frontC := lbeDeploy(c, "/it/label-c", bad)
	r := lb.waitReport("for /it/label-c", func(r events.LBReport) bool { return r.AppID == "/it/label-c" })
	if r.Node != "it-node" || r.PortIndex != 0 || !strings.Contains(r.Error, "no-such-keyword") {
		t.Errorf("report %+v: want node it-node, port 0 and HAProxy's alert", r)
	}
	c.waitFor(10*time.Second, "the left-out app in /metrics", func() (bool, string) {
		v := lb.metric("atoll_lb_apps_left_out")
		return v == 1, fmt.Sprint(v)
	})
	if got := servedBy(frontA, 4); len(got) != 1 {
		t.Fatalf("A not served beside the bad app: %v", got)
	}
	if got := servedBy(frontC, 2); len(got) != 0 {
		t.Fatalf("the bad app is served: %v", got)
	}
	if strings.Contains(lb.config(), "it_label_c") {
		t.Fatal("the bad app's part is in the live config")
	}

	// A new app means a reload: it still happens.
	workers := lb.workers()
	frontD := lbeDeploy(c, "/it/label-d", nil)
	lbeWaitServed(c, "/it/label-d", frontD)
	if got := lb.workers(); slices.Equal(got, workers) {
		t.Errorf("workers %v: D served without a reload?", got)
	}
	lbeWaitServed(c, "/it/label-a", frontA)

	// Fixed labels: C comes in.
	fixed := map[string]any{"labels": map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_BIND_ADDR": "127.0.0.1"}}
	c.mustDo("PUT", "/v2/apps/it/label-c", fixed, 200, nil)
	lbeWaitServed(c, "/it/label-c", frontC)
	c.waitFor(10*time.Second, "no app left out in /metrics", func() (bool, string) {
		v := lb.metric("atoll_lb_apps_left_out")
		return v == 0, fmt.Sprint(v)
	})
	for _, name := range []string{"atoll_lb_renders_total", "atoll_lb_reloads_total",
		"atoll_lb_apps_left_out_total", "atoll_lb_event_applied_seconds_count", "atoll_lb_render_seconds_count"} {
		if v := lb.metric(name); v < 1 {
			t.Errorf("%s = %v, want some", name, v)
		}
	}
}

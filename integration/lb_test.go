package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func requireHAProxy(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("haproxy is not installed (make deps installs it)")
		}
		t.Skip("haproxy is not installed; run make deps")
	}
}

// servedBy asks the service port n times and returns the task ids that
// answered, sorted and without repeats.
func servedBy(addr string, n int) []string {
	seen := map[string]bool{}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var id string
		if _, err := fmt.Sscanf(string(body), `{"taskId":%q`, &id); err == nil {
			seen[id] = true
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// TestLBServicePortAndVhost: an app with servicePort 10001 and 3 echo
// tasks is reachable through HAProxy on 10001 and requests reach all
// three; HAPROXY_0_VHOST routes its host on the HTTP frontend port, and a
// host nobody serves does not reach the app.
func TestLBServicePortAndVhost(t *testing.T) {
	requireHAProxy(t)
	const servicePort = 10001 // as the issue says: a fixed port, not a free one
	c := startCluster(t, clusterOptions{agents: 3})
	lb := lbStart(c, lbNodeOptions{})

	app := lbServiceApp("/it/web", 3, map[string]string{"HAPROXY_0_VHOST": "echo.example"}, servicePort)
	c.mustDo("POST", "/v2/apps", app, 201, nil)
	c.waitRunning("/it/web", 3, 30*time.Second)
	ts := c.lbWaitServed(lb.front(servicePort), "", "/it/web", 20*time.Second)
	if len(ts) != 3 {
		t.Fatalf("%d tasks served, want 3", len(ts))
	}

	vhost := lb.front(lb.httpPort)
	ts = c.lbWaitServed(vhost, "echo.example", "/it/web", 20*time.Second)
	// The frontend matches the host case-insensitively and without its port.
	if got, other := lbAsk(vhost, "Echo.Example:"+strconv.Itoa(lb.httpPort), 12); !slices.Equal(got, ids(ts)) || len(other) > 0 {
		t.Errorf("Host Echo.Example:%d reached %v, other answers %q; want %v", lb.httpPort, got, other, ids(ts))
	}
	// A host nobody serves gets HAProxy's own answer, never the app.
	for _, host := range []string{"other.example", "echo.example.other", "127.0.0.1"} {
		got, other := lbAsk(vhost, host, 6)
		if len(got) > 0 || len(other) != 6 {
			t.Errorf("Host %s reached tasks %v (other answers %q); want none", host, got, other)
			continue
		}
		for _, o := range other {
			if !strings.HasPrefix(o, "status 503") && !strings.HasPrefix(o, "status 404") {
				t.Errorf("Host %s: %s; want HAProxy's 503 or 404", host, o)
			}
		}
	}
}

// TestLBFollowsScalingWithoutReload runs `atoll lb` beside a master and
// agents: HAProxy serves the app on its service port, and scaling 3→6→2,
// killing a task (replaced) and killing one with scale change the backend
// through the runtime API — the same worker, no reload — and traffic
// reaches exactly the running tasks each time.
func TestLBFollowsScalingWithoutReload(t *testing.T) {
	requireHAProxy(t)
	c := startCluster(t, clusterOptions{agents: 3})
	lb := lbStart(c, lbNodeOptions{})
	servicePort := lbFreePort(t, lb.bindAddr)
	front := lb.front(servicePort)

	c.mustDo("POST", "/v2/apps", lbServiceApp("/it/lb", 3, nil, servicePort), 201, nil)
	ts := c.waitRunning("/it/lb", 3, 30*time.Second)
	c.lbWaitServed(front, "", "/it/lb", 20*time.Second)
	before := lb.showProc()
	if len(before.Workers) != 1 {
		t.Fatalf("HAProxy runs workers %v, want one", before.Workers)
	}
	noReload := func(step string) {
		t.Helper()
		after := lb.showProc()
		if after.MasterReloads != before.MasterReloads || !slices.Equal(after.Workers, before.Workers) {
			t.Fatalf("%s reloaded HAProxy: reloads %d -> %d, workers %v -> %v",
				step, before.MasterReloads, after.MasterReloads, before.Workers, after.Workers)
		}
	}

	for _, n := range []int{6, 2} {
		c.mustDo("PUT", "/v2/apps/it/lb?force=true", map[string]any{"instances": n}, 200, nil)
		ts = c.lbWaitSteady("/it/lb", n, 30*time.Second)
		c.lbWaitServed(front, "", "/it/lb", 20*time.Second)
		noReload(fmt.Sprintf("scaling to %d", n))
	}

	// A killed task is replaced: the new one serves, the old one no more.
	victim := ts[0].ID
	c.mustDo("DELETE", "/v2/apps/it/lb/tasks/"+victim, nil, 200, nil)
	ts = c.lbWaitSteady("/it/lb", 2, 30*time.Second)
	if lbTaskSet(ts)[victim] {
		t.Fatalf("killed task %s still listed: %v", victim, ids(ts))
	}
	c.lbWaitServed(front, "", "/it/lb", 20*time.Second)
	noReload("killing a task")

	// Killed with scale: not replaced.
	victim = ts[1].ID
	c.mustDo("DELETE", "/v2/apps/it/lb/tasks/"+victim+"?scale=true", nil, 200, nil)
	ts = c.lbWaitSteady("/it/lb", 1, 30*time.Second)
	if lbTaskSet(ts)[victim] {
		t.Fatalf("killed task %s still listed: %v", victim, ids(ts))
	}
	var got struct {
		App struct {
			Instances int `json:"instances"`
		} `json:"app"`
	}
	c.mustDo("GET", "/v2/apps/it/lb", nil, 200, &got)
	if got.App.Instances != 1 {
		t.Fatalf("after a kill with scale, instances %d, want 1", got.App.Instances)
	}
	c.lbWaitServed(front, "", "/it/lb", 20*time.Second)
	noReload("killing a task with scale")
}

// TestLBKilledTakesHAProxyWithIt: an `atoll lb` that dies without stopping
// HAProxy (SIGKILL) does not leave a master serving a config nobody keeps
// in line any more.
func TestLBKilledTakesHAProxyWithIt(t *testing.T) {
	requireHAProxy(t)
	c := startCluster(t, clusterOptions{agents: 1})
	lb := lbStart(c, lbNodeOptions{})
	var pid int
	c.waitFor(20*time.Second, "HAProxy's pid file", func() (bool, string) {
		data, err := os.ReadFile(filepath.Join(lb.dir, "haproxy.pid"))
		if err != nil {
			return false, err.Error()
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err == nil && pid > 0, string(data)
	})
	if err := lb.proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.waitFor(10*time.Second, fmt.Sprintf("HAProxy master %d to exit", pid), func() (bool, string) {
		err := syscall.Kill(pid, 0)
		return err == syscall.ESRCH || isZombie(pid), fmt.Sprint(err)
	})
}

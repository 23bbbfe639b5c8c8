package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/atollhq/atoll/lbsync"
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

// TestLBFollowsScalingWithoutReload runs `atoll lb` beside a master and
// agents: HAProxy serves the app on its service port, and scaling changes
// the backend through the runtime API — the same worker, no reload.
func TestLBFollowsScalingWithoutReload(t *testing.T) {
	requireHAProxy(t)
	c := startCluster(t, clusterOptions{agents: 3})
	dir := filepath.Join(c.dir, "haproxy")
	_, httpPort, _ := net.SplitHostPort(freeAddr(t))
	lb := c.start("lb", "lb", "--nats", c.nats.ClientURL(), "--haproxy-config", filepath.Join(dir, "haproxy.cfg"),
		"--bind-addr", "127.0.0.1", "--http-port", httpPort, "--stats", freeAddr(t), "--min-reload-interval", "100ms")
	t.Cleanup(func() { c.signal(lb, syscall.SIGTERM) })

	_, portStr, _ := net.SplitHostPort(freeAddr(t))
	servicePort, _ := strconv.Atoi(portStr)
	app := echoApp("/it/lb", 3)
	app["portDefinitions"] = []map[string]any{{"port": servicePort}}
	app["labels"] = map[string]string{"HAPROXY_GROUP": "external"}
	c.mustDo("POST", "/v2/apps", app, 201, nil)
	ts := c.waitRunning("/it/lb", 3, 30*time.Second)
	front := fmt.Sprintf("127.0.0.1:%d", servicePort)
	c.waitFor(20*time.Second, "HAProxy to reach the 3 tasks", func() (bool, string) {
		got := servedBy(front, 12)
		return slices.Equal(got, ids(ts)), fmt.Sprint(got)
	})

	proc := &lbsync.Process{MasterSocket: filepath.Join(dir, "master.sock")}
	showProc := func() lbsync.ProcInfo {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		info, err := proc.ShowProc(ctx)
		if err != nil {
			t.Fatalf("show proc: %v", err)
		}
		return info
	}
	before := showProc()

	for _, n := range []int{2, 3} {
		c.mustDo("PUT", "/v2/apps/it/lb?force=true", map[string]any{"instances": n}, 200, nil)
		ts = c.waitRunning("/it/lb", n, 30*time.Second)
		c.waitFor(20*time.Second, fmt.Sprintf("HAProxy to reach exactly the %d tasks", n), func() (bool, string) {
			got := servedBy(front, 12)
			return slices.Equal(got, ids(ts)), fmt.Sprint(got)
		})
	}
	after := showProc()
	if after.MasterReloads != before.MasterReloads || !slices.Equal(after.Workers, before.Workers) {
		t.Fatalf("scaling reloaded HAProxy: reloads %d -> %d, workers %v -> %v",
			before.MasterReloads, after.MasterReloads, before.Workers, after.Workers)
	}
}

package integration

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDevRunsTheDemoAndCtrlCStopsEverything is `make run` as a user sees
// it: the demo app runs one task per agent, and Ctrl-C leaves nothing.
func TestDevRunsTheDemoAndCtrlCStopsEverything(t *testing.T) {
	dir := passableTempDir(t)
	httpAddr := freeAddr(t)
	natsAddr := freeAddr(t)
	out, err := os.Create(filepath.Join(dir, "dev.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// Free ports for DNS too: the defaults (8053, 8123) may be taken by a
	// `make run` on this machine.
	requireHAProxy(t)
	_, lbHTTPPort, _ := net.SplitHostPort(freeAddr(t))
	cmd := exec.Command(atollBin, "dev", "--demo", "--data-dir", filepath.Join(dir, "data"),
		"--http", httpAddr, "--nats", natsAddr, "--dns", freeDNSAddr(t), "--dns-http", freeAddr(t),
		"--lb-http-port", lbHTTPPort, "--lb-stats", freeAddr(t))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			data, _ := os.ReadFile(out.Name())
			t.Logf("atoll dev output:\n%s", tail(data, 4096))
		}
	}()

	c := &cluster{t: t, dir: dir, api: devAPI(t, filepath.Join(dir, "data"), httpAddr)}
	var hosts map[string]bool
	c.waitFor(30*time.Second, "the demo app's 3 tasks answering on 3 agents", func() (bool, string) {
		ts := c.tasks("/demo/echo")
		hosts = map[string]bool{}
		for _, task := range ts {
			if id, err := echoTask(task); err == nil && id == task.ID {
				hosts[task.IPAddresses[0].IPAddress] = true
			}
		}
		return len(hosts) == 3 && len(taskPIDs(dir, "/demo/echo")) == 3, fmt.Sprintf("%d tasks, answering from %v", len(ts), hosts)
	})
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		if !hosts[ip] {
			t.Fatalf("no demo task on %s: %v", ip, hosts)
		}
	}
	// The demo's tasks run as nobody; the data dir lets them pass to
	// their sandboxes, the master's folder stays private.
	if pid := taskPIDs(dir, "/demo/echo")[0]; procUID(t, pid) != "65534" {
		t.Errorf("demo task %d runs as uid %s, want nobody", pid, procUID(t, pid))
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{filepath.Join(dir, "data"), 0o711}, {filepath.Join(dir, "data", "master"), 0o700}, {filepath.Join(dir, "data", "agent-1", "state"), 0o700}} {
		fi, err := os.Stat(d.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != d.mode {
			t.Errorf("%s: mode %v, want %v", d.path, fi.Mode().Perm(), d.mode)
		}
	}
	var agents struct {
		Slaves []struct {
			Hostname   string            `json:"hostname"`
			Attributes map[string]string `json:"attributes"`
		} `json:"slaves"`
	}
	c.mustDo("GET", "/master/state", nil, 200, &agents)
	for _, s := range agents.Slaves {
		if !strings.HasPrefix(s.Hostname, "agent-") || s.Attributes["region"] != "r"+strings.TrimPrefix(s.Hostname, "agent-") {
			t.Fatalf("dev agent %s has attributes %v", s.Hostname, s.Attributes)
		}
	}

	// The demo's service port (10000, the first one assigned) is served by
	// the dev HAProxy on 127.0.0.1 and reaches all three tasks.
	ts := c.tasks("/demo/echo")
	c.waitFor(20*time.Second, "HAProxy on 127.0.0.1:10000 to reach the 3 demo tasks", func() (bool, string) {
		got := servedBy("127.0.0.1:10000", 12)
		return slices.Equal(got, ids(ts)), fmt.Sprint(got)
	})

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("atoll dev exited with %v after Ctrl-C", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("atoll dev still running 20s after Ctrl-C")
	}
	if out, _ := exec.Command("pgrep", "-f", filepath.Join(dir, "data", "haproxy")).Output(); len(out) != 0 {
		t.Fatalf("HAProxy still running after Ctrl-C: %s", out)
	}
	if pids := taskPIDs(dir, ""); len(pids) != 0 {
		t.Fatalf("task processes left after Ctrl-C: %v", pids)
	}
	if _, err := http.Get(c.api + "/ping"); err == nil {
		t.Fatal("master still answers after Ctrl-C")
	}
}

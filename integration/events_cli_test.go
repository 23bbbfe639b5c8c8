package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cliStream is a running `atoll events` with its output lines.
type cliStream struct {
	t     *testing.T
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	errs  strings.Builder
}

func startEventsCLI(t *testing.T, args ...string) *cliStream {
	t.Helper()
	return startCLI(t, append([]string{"events"}, args...)...)
}

// startCLI runs `atoll args...` until the test ends, collecting its lines.
func startCLI(t *testing.T, args ...string) *cliStream {
	t.Helper()
	s := &cliStream{t: t, cmd: exec.Command(atollBin, args...)}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = &syncWriter{mu: &s.mu, w: &s.errs}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		<-done
		_ = s.cmd.Wait()
		if t.Failed() {
			t.Logf("atoll %v stdout:\n%s\nstderr:\n%s", args, strings.Join(s.output(), "\n"), s.stderr())
		}
	})
	return s
}

func (s *cliStream) output() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

func (s *cliStream) stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs.String()
}

// count is the number of lines that match.
func (s *cliStream) count(match func(string) bool) int {
	n := 0
	for _, l := range s.output() {
		if match(l) {
			n++
		}
	}
	return n
}

// waitLines waits until n lines match.
func (s *cliStream) waitLines(c *cluster, n int, what string, match func(string) bool) {
	s.t.Helper()
	c.waitFor(20*time.Second, what, func() (bool, string) {
		got := s.count(match)
		return got >= n, fmt.Sprintf("%d matching lines of %d", got, len(s.output()))
	})
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func contains(parts ...string) func(string) bool {
	return func(l string) bool {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				return false
			}
		}
		return true
	}
}

// TestEventsCLI follows a real master with `atoll events`: readable lines
// (plain, since stdout is a pipe), --json lines filtered to one app, and a
// reconnection after the master restarts, which sends Last-Event-ID and so
// gets the master's resync.
func TestEventsCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a master and an agent")
	}
	c := startCluster(t, clusterOptions{agents: 1})
	plain := startEventsCLI(t, "--master", c.api)
	plain.waitLines(c, 1, "the plain stream attached", contains("event_stream_attached"))
	js := startEventsCLI(t, "--json", "--app", "cli/sleep", "--master", c.api)
	// Every stream hears of every other attaching: the JSON one is on.
	plain.waitLines(c, 2, "the JSON stream attached", contains("event_stream_attached"))

	c.mustDo("POST", "/v2/apps", `{"id": "/cli/other", "cmd": "sleep 600", "instances": 1, "cpus": 0.1, "mem": 16}`, 201, nil)
	c.mustDo("POST", "/v2/apps", `{"id": "/cli/sleep", "cmd": "sleep 600", "instances": 1, "cpus": 0.1, "mem": 16}`, 201, nil)
	plain.waitLines(c, 1, "a readable TASK_RUNNING line", contains("status_update_event", "/cli/sleep", "TASK_RUNNING"))
	plain.waitLines(c, 1, "the deployment's success", contains("deployment_success", "/cli/sleep"))
	js.waitLines(c, 1, "a JSON TASK_RUNNING line", contains(`"taskStatus":"TASK_RUNNING"`))
	for _, l := range plain.output() {
		if strings.Contains(l, "\x1b") {
			t.Fatalf("colour codes in output to a pipe: %q", l)
		}
	}
	for _, l := range js.output() {
		var ev struct {
			EventType string `json:"eventType"`
			AppID     string `json:"appId"`
			AppDef    *struct {
				ID string `json:"id"`
			} `json:"appDefinition"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.EventType == "" {
			t.Fatalf("not an event's JSON: %q (%v)", l, err)
		}
		if ev.AppID != "" && ev.AppID != "/cli/sleep" || ev.AppDef != nil && ev.AppDef.ID != "/cli/sleep" {
			t.Fatalf("--app /cli/sleep printed another app's event: %s", l)
		}
	}
	if js.count(contains("/cli/other")) > 0 {
		t.Fatal("--app /cli/sleep printed /cli/other's events")
	}

	// A new master process has no replay window: the stream reconnects
	// with the Last-Event-ID it had and is told to resync.
	c.signal(c.master, syscall.SIGTERM)
	c.startMaster()
	plain.waitLines(c, 1, "the resync after reconnecting", contains("resync"))
	if !strings.Contains(plain.stderr(), "reconnecting") {
		t.Errorf("no reconnect notice on stderr: %q", plain.stderr())
	}
}

// TestTopOnce prints one snapshot of apps and agents; then a live atoll
// top redraws when the app is scaled.
func TestTopOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a master and agents")
	}
	c := startCluster(t, clusterOptions{agents: 2})
	c.mustDo("POST", "/v2/apps", `{"id": "/top/sleep", "cmd": "sleep 600", "instances": 2, "cpus": 0.25, "mem": 32, "constraints": [["hostname", "UNIQUE"]]}`, 201, nil)
	c.waitFor(20*time.Second, "2 running tasks", func() (bool, string) {
		n := countState(c.tasks("/top/sleep"), "TASK_RUNNING")
		return n == 2, fmt.Sprintf("%d running", n)
	})
	c.waitFor(20*time.Second, "the deployment to end", func() (bool, string) {
		var deps []any
		c.mustDo("GET", "/v2/deployments", nil, 200, &deps)
		return len(deps) == 0, fmt.Sprintf("%d deployments", len(deps))
	})
	out, err := exec.Command(atollBin, "top", "--once", "--master", c.api).CombinedOutput()
	if err != nil {
		t.Fatalf("atoll top --once: %v\n%s", err, out)
	}
	text := string(out)
	t.Logf("atoll top --once:\n%s", text)
	if strings.Contains(text, "\x1b") {
		t.Errorf("ANSI codes in --once output to a pipe")
	}
	fields := func(prefix string) []string {
		for _, l := range strings.Split(text, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == prefix {
				return f
			}
		}
		t.Fatalf("no line for %s", prefix)
		return nil
	}
	// APP RUNNING HEALTHY WANTED DEPLOYMENTS
	if f := fields("/top/sleep"); strings.Join(f[1:], " ") != "2 - 2 -" {
		t.Errorf("app line %v, want 2 running, no health checks, 2 wanted, no deployment", f)
	}
	// AGENT IP REGION CPUS MEM TASKS STATE
	for i := 1; i <= 2; i++ {
		f := fields(fmt.Sprintf("agent-%d", i))
		want := []string{fmt.Sprintf("agent-%d", i), agentIP(i), fmt.Sprintf("r%d", i), "0.25/4", "32/4096", "1", "active"}
		if strings.Join(f, " ") != strings.Join(want, " ") {
			t.Errorf("agent line %v, want %v", f, want)
		}
	}

	live := startCLI(t, "top", "--master", c.api)
	live.waitLines(c, 1, "the first table", contains("/top/sleep"))
	c.mustDo("PUT", "/v2/apps/top/sleep", `{"instances": 1}`, 200, nil)
	live.waitLines(c, 1, "a redraw with 1 task", func(l string) bool { return strings.Join(strings.Fields(l), " ") == "/top/sleep 1 - 1 -" })
}

package agent

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

func intp(i int) *int { return &i }

// healthUpdates lists a task's acked health updates, in order.
func (m *fakeMaster) healthUpdates(taskID string) []events.StatusUpdate {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []events.StatusUpdate
	for _, s := range m.statuses {
		if s.TaskID == taskID && len(s.HealthCheckResults) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// waitHealth waits for the n-th (from 1) health update of a task.
func (m *fakeMaster) waitHealth(t *testing.T, taskID string, n int) events.StatusUpdate {
	t.Helper()
	var got []events.StatusUpdate
	waitFor(t, 15*time.Second, taskID+" health update", func() bool {
		got = m.healthUpdates(taskID)
		return len(got) >= n
	})
	return got[n-1]
}

// healthServer serves HTTP on ip (the agent's advertised IP) with the
// status code in *status.
func healthServer(t *testing.T, ip string) (port int, status *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	status = new(atomic.Int32)
	status.Store(http.StatusOK)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().(*net.TCPAddr).Port, status
}

// freePort is a loopback port nothing listens on.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func healthState(u events.StatusUpdate) string {
	switch {
	case u.Healthy == nil:
		return "unknown"
	case *u.Healthy:
		return "healthy"
	}
	return "unhealthy"
}

// TestHealthChecksReported runs an HTTP check on the task's second port
// against a server the test controls: healthy, then failing up to
// maxConsecutiveFailures, then killed.
func TestHealthChecksReported(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	port, status := healthServer(t, cfg.AdvertiseIP)

	req := shellTask("hc.1", "exec sleep 300")
	req.Task.Ports = []int{freePort(t, cfg.AdvertiseIP), port}
	req.HealthChecks = []events.HealthCheck{{
		Protocol: "HTTP", Path: "/health", PortIndex: intp(1),
		IntervalSeconds: 1, TimeoutSeconds: 1, MaxConsecutiveFailures: 2,
	}}
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}

	up := env.master.waitHealth(t, "hc.1", 1)
	res := up.HealthCheckResults
	if healthState(up) != "healthy" || up.State != events.TaskRunning || up.AgentID != id || len(res) != 1 {
		t.Fatalf("first health update: %+v", up)
	}
	if !res[0].Alive || res[0].TaskID != "hc.1" || res[0].FirstSuccess == nil || res[0].LastSuccess == nil || res[0].LastFailure != nil {
		t.Fatalf("first result: %+v", res[0])
	}

	status.Store(http.StatusInternalServerError)
	up = env.master.waitHealth(t, "hc.1", 2)
	res = up.HealthCheckResults
	if healthState(up) != "unhealthy" || res[0].Alive || res[0].ConsecutiveFailures != 1 || res[0].FirstSuccess == nil {
		t.Fatalf("second health update: %+v %+v", up, res)
	}
	if !strings.Contains(res[0].LastFailureCause, "/health") || !strings.Contains(res[0].LastFailureCause, "500") {
		t.Errorf("lastFailureCause = %q", res[0].LastFailureCause)
	}
	up = env.master.waitHealth(t, "hc.1", 3)
	if res = up.HealthCheckResults; healthState(up) != "unhealthy" || res[0].ConsecutiveFailures != 2 {
		t.Fatalf("third health update (at maxConsecutiveFailures): %+v %+v", up, res)
	}

	// The agent does not kill on health; the master does. Once the kill
	// begins, the checks stop (their goroutine is gone).
	if ack := env.kill(id, events.KillRequest{TaskID: "hc.1", KillGracePeriod: time.Second}); ack.Error != "" {
		t.Fatalf("kill: %s", ack.Error)
	}
	a.mu.Lock()
	done := a.tasks["hc.1"].healthDone
	a.mu.Unlock()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("health checks still run after the kill began")
	}
	env.master.waitStatus(t, "hc.1", events.TaskKilled)

	// Health updates only on changes: healthy, unhealthy, at the limit;
	// none once the kill began.
	var got []string
	for _, s := range env.master.statusesOf("hc.1") {
		if len(s.HealthCheckResults) > 0 {
			got = append(got, healthState(s))
		} else {
			got = append(got, string(s.State))
		}
	}
	want := []string{"TASK_RUNNING", "healthy", "unhealthy", "unhealthy", "TASK_KILLING", "TASK_KILLED"}
	if !slices.Equal(got, want) {
		t.Errorf("updates = %v, want %v", got, want)
	}
}

// TestHealthCommandCheckGrace runs a COMMAND check in the task's sandbox
// with its env; its failures before the first success, within the grace
// period, are never reported.
func TestHealthCommandCheckGrace(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)

	// The task gets ready when the test says so, after a check failed.
	req := shellTask("cmd.1", `while [ ! -f go ]; do sleep 0.02; done; echo ok > ready; exec sleep 300`)
	req.HealthChecks = []events.HealthCheck{{
		Protocol: "COMMAND",
		Command: &struct {
			Value string `json:"value"`
		}{Value: `echo check >> checks; test -f ready && test "$MESOS_TASK_ID" = cmd.1`},
		GracePeriodSeconds: 60, IntervalSeconds: 1, TimeoutSeconds: 5, MaxConsecutiveFailures: 1,
	}}
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	waitFor(t, 10*time.Second, "a failed check", func() bool { return sandboxFile(cfg, "cmd.1", "checks") != "" })
	if err := os.WriteFile(filepath.Join(cfg.WorkDir, "tasks", "cmd.1", "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	up := env.master.waitHealth(t, "cmd.1", 1)
	if healthState(up) != "healthy" || up.HealthCheckResults[0].LastFailure != nil || up.HealthCheckResults[0].ConsecutiveFailures != 0 {
		t.Fatalf("first health update: %+v %+v", up, up.HealthCheckResults)
	}
}

// TestHealthChecksResumeAfterReadopt stops an agent without killing its
// task; the next agent on the work dir resumes the task's checks.
func TestHealthChecksResumeAfterReadopt(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	cfg.KillTasksOnStop = false
	l, err := net.Listen("tcp", net.JoinHostPort(cfg.AdvertiseIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Accept and drop, so the TCP check's connections do not pile up.
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()

	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	req := shellTask("again.1", "exec sleep 300")
	req.Task.Ports = []int{l.Addr().(*net.TCPAddr).Port}
	req.HealthChecks = []events.HealthCheck{{Protocol: "TCP", PortIndex: intp(0), IntervalSeconds: 1, TimeoutSeconds: 1, MaxConsecutiveFailures: 3}}
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	if up := env.master.waitHealth(t, "again.1", 1); healthState(up) != "healthy" {
		t.Fatalf("first health update: %+v", up)
	}
	cp := checkpointOf(t, cfg, "again.1")
	killSession(t, cp.Pid)
	if len(cp.Launch.HealthChecks) != 1 || cp.StartedAt.IsZero() {
		t.Fatalf("checkpoint: checks %+v startedAt %v", cp.Launch.HealthChecks, cp.StartedAt)
	}
	a.stop(t)

	cfg.NC = env.connect()
	cfg.KillTasksOnStop = true
	b := env.start(env.newAgent(cfg))
	up := env.master.waitHealth(t, "again.1", 2)
	if healthState(up) != "healthy" || up.AgentID != id {
		t.Fatalf("health update after re-adoption: %+v", up)
	}
	b.mu.Lock()
	started := b.tasks["again.1"].startedAt
	b.mu.Unlock()
	if !started.Equal(cp.StartedAt) {
		t.Errorf("re-adopted task started at %v, want %v from the checkpoint", started, cp.StartedAt)
	}
}

func TestStatusQueueHealthReplaced(t *testing.T) {
	q := newStatusQueue()
	upd := func(task string, state events.TaskState, msg string) events.StatusUpdate {
		return events.StatusUpdate{TaskID: task, State: state, Message: msg}
	}
	health := func(task, msg string, replaceable bool) statusItem {
		return statusItem{upd: upd(task, events.TaskRunning, msg), replaceable: replaceable}
	}
	q.pushHealth(health("a", "h1", true)) // the head: never replaced
	q.pushHealth(health("a", "h2", true))
	q.push(statusItem{upd: upd("b", events.TaskRunning, "")})
	q.pushHealth(health("a", "h3", true)) // replaces h2, past b's update
	q.pushHealth(health("b", "hb", true))
	q.pushHealth(health("a", "limit", false)) // replaces h3
	q.pushHealth(health("a", "h4", true))     // follows the limit, does not replace it
	q.push(statusItem{upd: upd("a", events.TaskKilling, "")})
	q.pushHealth(health("a", "h5", true)) // after KILLING: appended

	var got []string
	for _, it := range q.items {
		got = append(got, it.upd.TaskID+":"+it.upd.Message+string(it.upd.State))
	}
	want := []string{
		"a:h1TASK_RUNNING", "a:limitTASK_RUNNING", "b:TASK_RUNNING", "b:hbTASK_RUNNING",
		"a:h4TASK_RUNNING", "a:TASK_KILLING", "a:h5TASK_RUNNING",
	}
	if !slices.Equal(got, want) {
		t.Errorf("queue = %v\nwant    %v", got, want)
	}
}

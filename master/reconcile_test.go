package master

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// manualClock stands still until a test moves it.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// leadingMaster is a master that leads on a clock of the test's, with no
// loops running: the test drives reconcileOnce itself.
func leadingMaster(t *testing.T) (*Master, *manualClock) {
	t.Helper()
	m, clock, _ := leadingMasterOn(t)
	return m, clock
}

// leadingMasterOn is leadingMaster with the NATS server it is connected
// to, for tests that play agents.
func leadingMasterOn(t *testing.T) (*Master, *manualClock, *eventstest.NATS) {
	t.Helper()
	clock := &manualClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	ns := eventstest.StartNATS(t)
	m, err := New(Config{
		NC: eventstest.Connect(t, ns), Store: &MemStore{},
		AgentTimeout: 15 * time.Second, Now: clock.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.establish(); err != nil {
		t.Fatal(err)
	}
	return m, clock, ns
}

// nodeOf is the node token an agent's messages come from.
func nodeOf(m *Master, agentID string) string {
	var host string
	m.View(func(s *events.State) { host = s.Agents[agentID].Hostname })
	return events.NodeToken(host)
}

func addAgent(t *testing.T, m *Master, host, ip string, tasks ...events.TaskReport) string {
	t.Helper()
	id, err := m.registerAgent(events.NodeToken(host), events.RegisterRequest{
		Hostname: host, IP: ip, Tasks: tasks,
		Resources: events.Resources{Cpus: 8, Mem: 8192, Disk: 1000, Ports: []events.PortRange{{Begin: 31000, End: 31100}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func createApp(t *testing.T, m *Master, body string) events.App {
	t.Helper()
	app, err := appForCreate([]byte(body), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := m.CreateApp(app)
	if err != nil {
		t.Fatal(err)
	}
	return ch.App
}

// setStatus reports a task state as its agent would.
func setStatus(t *testing.T, m *Master, taskID string, state events.TaskState) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	task, ok := m.state.Tasks[taskID]
	if !ok {
		t.Fatalf("no task %s", taskID)
	}
	if err := m.commitLocked(m.taskStatusLocked(task, state, "test", nil, m.cfg.Now())...); err != nil {
		t.Fatal(err)
	}
}

func tasksIn(m *Master, appID string, state events.TaskState) []events.Task {
	var out []events.Task
	m.View(func(s *events.State) {
		for _, t := range s.TasksOf(appID) {
			if t.State == state {
				out = append(out, t)
			}
		}
	})
	return out
}

func waitingReason(m *Master, appID string) string {
	reason := ""
	m.View(func(s *events.State) {
		for _, d := range s.Deployments {
			for _, a := range d.CurrentActions {
				if a.App == appID {
					reason = a.Waiting
				}
			}
		}
	})
	return reason
}

func TestFailedTasksRelaunchWithBackoff(t *testing.T) {
	m, clock := leadingMaster(t)
	addAgent(t, m, "h1", "127.0.0.9")
	createApp(t, m, `{"id": "/crash", "cmd": "exit 1", "backoffSeconds": 1, "backoffFactor": 2, "maxLaunchDelaySeconds": 3}`)

	// Delays after the 1st..4th failure: 1s, 2s, then capped at 3s.
	for i, delay := range []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		if delay > 0 {
			clock.Advance(delay - 10*time.Millisecond)
			m.reconcileOnce()
			if n := len(tasksIn(m, "/crash", events.TaskStaging)); n != 0 {
				t.Fatalf("launch %d: %d tasks staged %s before the %s delay ended", i, n, 10*time.Millisecond, delay)
			}
			if why := waitingReason(m, "/crash"); !strings.Contains(why, "delayed") {
				t.Fatalf("launch %d: deployment waiting reason %q, want the delay", i, why)
			}
			clock.Advance(10 * time.Millisecond)
		}
		m.reconcileOnce()
		staged := tasksIn(m, "/crash", events.TaskStaging)
		if len(staged) != 1 {
			t.Fatalf("launch %d: %d tasks staged after the %s delay, want 1", i, len(staged), delay)
		}
		setStatus(t, m, staged[0].ID, events.TaskFailed)
	}

	// A new config starts afresh: no delay.
	if _, err := m.RestartApp("/crash", true); err != nil {
		t.Fatal(err)
	}
	m.reconcileOnce()
	if n := len(tasksIn(m, "/crash", events.TaskStaging)); n != 1 {
		t.Fatalf("after restart: %d staged, want 1 at once", n)
	}
}

func TestUnreachableAgentIsReplacedAndReconciledOnReturn(t *testing.T) {
	m, clock := leadingMaster(t)
	first := addAgent(t, m, "h1", "127.0.0.9")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16}`)
	m.reconcileOnce()
	staged := tasksIn(m, "/web", events.TaskStaging)
	if len(staged) != 1 || staged[0].AgentID != first {
		t.Fatalf("staged %+v, want one task on %s", staged, first)
	}
	original := staged[0].ID
	setStatus(t, m, original, events.TaskRunning)
	second := addAgent(t, m, "h2", "127.0.0.10")

	// The first agent falls silent; the second keeps heartbeating. One
	// millisecond before the agent timeout it is still active, at the
	// timeout it is not.
	clock.Advance(15*time.Second - time.Millisecond)
	m.mu.Lock()
	m.runtime.lastSeen[second] = clock.Now()
	m.mu.Unlock()
	if _, deadline := m.reconcileOnce(); !deadline.Equal(clock.Now().Add(time.Millisecond)) {
		t.Fatalf("next heartbeat deadline %s, want 1ms from now", deadline)
	}
	if u := tasksIn(m, "/web", events.TaskUnreachable); len(u) != 0 {
		t.Fatalf("unreachable 1ms before the agent timeout: %v", ids(u))
	}
	clock.Advance(time.Millisecond)
	m.reconcileOnce()
	if u := tasksIn(m, "/web", events.TaskUnreachable); len(u) != 1 || u[0].ID != original {
		t.Fatalf("unreachable tasks %+v, want %s", u, original)
	}
	m.reconcileOnce()
	replacement := tasksIn(m, "/web", events.TaskStaging)
	if len(replacement) != 1 || replacement[0].AgentID != second {
		t.Fatalf("replacement %+v, want one task on %s", replacement, second)
	}
	setStatus(t, m, replacement[0].ID, events.TaskRunning)

	// The first agent returns, still running the original task: it is
	// running again under its own id, and the surplus goes.
	if _, err := m.registerAgent("h1", events.RegisterRequest{
		AgentID: first, Hostname: "h1", IP: "127.0.0.9",
		Resources: events.Resources{Cpus: 8, Mem: 8192, Ports: []events.PortRange{{Begin: 31000, End: 31100}}},
		Tasks:     []events.TaskReport{{TaskID: original, AppID: "/web", State: events.TaskRunning}},
	}); err != nil {
		t.Fatal(err)
	}
	m.reconcileOnce()
	running := tasksIn(m, "/web", events.TaskRunning)
	killing := tasksIn(m, "/web", events.TaskKilling)
	if len(running) != 1 || running[0].ID != original || len(killing) != 1 || killing[0].ID != replacement[0].ID {
		t.Fatalf("after return: running %v, killing %v; want %s running and the replacement killing", ids(running), ids(killing), original)
	}
}

func ids(ts []events.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

// TestChurnIsCounted: what an agent reports and the master does not hold is
// killed, and what the master placed there that the report lacks is lost;
// both show in /metrics (the churn of issue 13 was invisible there).
func TestChurnIsCounted(t *testing.T) {
	m, clock := leadingMaster(t)
	id := addAgent(t, m, "h1", "127.0.0.9")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 1}`)
	m.reconcileOnce()
	staged := tasksIn(m, "/web", events.TaskStaging)
	if len(staged) != 1 {
		t.Fatalf("%d tasks staged, want 1", len(staged))
	}
	// Later, the agent reports a task the master never heard of, and not
	// the one the master staged there.
	clock.Advance(2 * reportGrace)
	m.mu.Lock()
	m.reconcileReportsLocked(id, []events.TaskReport{{TaskID: "stranger.1", AppID: "/web", State: events.TaskRunning}}, clock.Now())
	m.mu.Unlock()
	if n := testutil.ToFloat64(m.metrics.unknownKills); n != 1 {
		t.Errorf("atoll_master_unknown_task_kills_total = %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.metrics.lostFromReports); n != 1 {
		t.Errorf("atoll_master_tasks_lost_from_reports_total = %v, want 1", n)
	}
}

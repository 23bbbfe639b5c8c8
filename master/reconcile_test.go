package master

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
	establishForTest(t, m)
	return m, clock, ns
}

// establishForTest makes m lead with its committer running (no reconcile
// loop: tests drive reconcile themselves); requests to agents are
// captured, not sent (see reconcile).
func establishForTest(t testing.TB, m *Master) {
	t.Helper()
	started, err := m.establish()
	if err != nil {
		t.Fatalf("establish: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	sends := &capturedSends{}
	captured.Store(m, sends)
	go func() { defer close(done); m.commitLoop(ctx, sends.add) }()
	t.Cleanup(func() { cancel(); <-done; captured.Delete(m) })
	if err := started.wait(); err != nil {
		t.Fatalf("establish: %v", err)
	}
}

// capturedSends keeps the requests to agents that durable batches
// release, for the test to run or inspect, instead of sending them.
type capturedSends struct {
	mu    sync.Mutex
	sends []func(context.Context)
}

func (c *capturedSends) add(send func(context.Context)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sends = append(c.sends, send)
}

func (c *capturedSends) take() []func(context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.sends
	c.sends = nil
	return out
}

// reconcile runs one pass, waits until what it staged is durable, and
// returns the requests to agents it released (with any released before).
func reconcile(t *testing.T, m *Master) ([]func(context.Context), time.Time) {
	t.Helper()
	deadline := m.reconcileOnce()
	m.mu.Lock()
	d := m.durableLocked()
	m.mu.Unlock()
	if err := d.wait(); err != nil {
		t.Fatalf("reconcile pass not stored: %v", err)
	}
	c, _ := captured.Load(m)
	return c.(*capturedSends).take(), deadline
}

// captured is each test master's capturedSends.
var captured sync.Map

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
			reconcile(t, m)
			if n := len(tasksIn(m, "/crash", events.TaskStaging)); n != 0 {
				t.Fatalf("launch %d: %d tasks staged %s before the %s delay ended", i, n, 10*time.Millisecond, delay)
			}
			if why := waitingReason(m, "/crash"); !strings.Contains(why, "delayed") {
				t.Fatalf("launch %d: deployment waiting reason %q, want the delay", i, why)
			}
			clock.Advance(10 * time.Millisecond)
		}
		reconcile(t, m)
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
	reconcile(t, m)
	if n := len(tasksIn(m, "/crash", events.TaskStaging)); n != 1 {
		t.Fatalf("after restart: %d staged, want 1 at once", n)
	}
}

func TestUnreachableAgentIsReplacedAndReconciledOnReturn(t *testing.T) {
	m, clock := leadingMaster(t)
	first := addAgent(t, m, "h1", "127.0.0.9")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16}`)
	reconcile(t, m)
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
	m.live.set(second, nodeOf(m, second), true, clock.Now())
	if _, deadline := reconcile(t, m); !deadline.Equal(clock.Now().Add(time.Millisecond)) {
		t.Fatalf("next heartbeat deadline %s, want 1ms from now", deadline)
	}
	if u := tasksIn(m, "/web", events.TaskUnreachable); len(u) != 0 {
		t.Fatalf("unreachable 1ms before the agent timeout: %v", ids(u))
	}
	clock.Advance(time.Millisecond)
	reconcile(t, m)
	if u := tasksIn(m, "/web", events.TaskUnreachable); len(u) != 1 || u[0].ID != original {
		t.Fatalf("unreachable tasks %+v, want %s", u, original)
	}
	reconcile(t, m)
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
	reconcile(t, m)
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
	reconcile(t, m)
	staged := tasksIn(m, "/web", events.TaskStaging)
	if len(staged) != 1 {
		t.Fatalf("%d tasks staged, want 1", len(staged))
	}
	// The agent acks the launch. Later, it reports a task the master
	// never heard of, and not the one the master staged there.
	m.live.launchAcked(staged[0].ID, clock.Now(), nil)
	clock.Advance(2 * reportAfterAck)
	m.mu.Lock()
	m.reconcileReportsLocked(id, &agentReport{tasks: []events.TaskReport{{TaskID: "stranger.1", AppID: "/web", State: events.TaskRunning}}, at: clock.Now()}, clock.Now())
	m.mu.Unlock()
	if n := testutil.ToFloat64(m.metrics.unknownKills); n != 1 {
		t.Errorf("atoll_master_unknown_task_kills_total = %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.metrics.lostFromReports); n != 1 {
		t.Errorf("atoll_master_tasks_lost_from_reports_total = %v, want 1", n)
	}
}

// A report that lacks a staging task says nothing about it unless it was
// made after the agent acked the launch: a heartbeat sent before the
// launch arrived, and handled late by a busy master, must not lose the
// task (issue 13: 7,000 launches for 4,000 tasks). Adopted when the agent
// reports it running before its status update arrives.
func TestReportBeforeAckLosesNothing(t *testing.T) {
	m, clock := leadingMaster(t)
	id := addAgent(t, m, "h1", "127.0.0.9")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 1}`)
	reconcile(t, m)
	task := tasksIn(m, "/web", events.TaskStaging)[0]
	report := func(at time.Time, tasks ...events.TaskReport) {
		m.mu.Lock()
		m.reconcileReportsLocked(id, &agentReport{tasks: tasks, at: at}, clock.Now())
		m.mu.Unlock()
	}
	// Long after staging, a report without the task, not acked yet.
	clock.Advance(time.Minute)
	report(clock.Now())
	if got := tasksIn(m, "/web", events.TaskStaging); len(got) != 1 {
		t.Fatalf("after a report made before the ack: %d staging tasks, want the one", len(got))
	}
	// Acked, and a report from just before the ack arrives late.
	m.live.launchAcked(task.ID, clock.Now(), nil)
	report(clock.Now().Add(-time.Second))
	if got := tasksIn(m, "/web", events.TaskStaging); len(got) != 1 {
		t.Fatalf("after a report made before the ack: %d staging tasks, want the one", len(got))
	}
	// The agent reports it running before its status update comes.
	clock.Advance(2 * reportAfterAck)
	report(clock.Now(), events.TaskReport{TaskID: task.ID, AppID: "/web", State: events.TaskRunning})
	if got := tasksIn(m, "/web", events.TaskRunning); len(got) != 1 || got[0].ID != task.ID {
		t.Fatalf("after a report that the task runs: running %v, want %s", got, task.ID)
	}
	if n := testutil.ToFloat64(m.metrics.lostFromReports) + testutil.ToFloat64(m.metrics.unknownKills); n != 0 {
		t.Errorf("lost from reports + unknown kills = %v, want 0", n)
	}
}

// A report carries how far the agent had taken launches when it made it
// (events.LaunchMark): one made before the agent took a task says nothing
// about it, however late the busy master handles it (the bench's acked
// launches killed as lost under load); one made after it loses a task it
// lacks at once, without waiting for the ack-to-report second; one from
// another run of the agent (restarted) goes by time, as before.
func TestReportLaunchMarkOrdersReportsAndAcks(t *testing.T) {
	m, clock := leadingMaster(t)
	id := addAgent(t, m, "h1", "127.0.0.9")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 2}`)
	reconcile(t, m)
	staged := tasksIn(m, "/web", events.TaskStaging)
	if len(staged) != 2 {
		t.Fatalf("%d staged, want 2", len(staged))
	}
	first, second := staged[0], staged[1]
	report := func(mark events.LaunchMark, tasks ...events.TaskReport) {
		m.mu.Lock()
		m.reconcileReportsLocked(id, &agentReport{tasks: tasks, launches: &mark, at: clock.Now()}, clock.Now())
		m.mu.Unlock()
	}
	m.live.launchAcked(first.ID, clock.Now(), &events.LaunchMark{Run: "r1", N: 7})
	m.live.launchAcked(second.ID, clock.Now(), &events.LaunchMark{Run: "r1", N: 8})
	// Made when the agent had taken 6 launches, handled a minute later.
	clock.Advance(time.Minute)
	report(events.LaunchMark{Run: "r1", N: 6})
	if got := tasksIn(m, "/web", events.TaskStaging); len(got) != 2 {
		t.Fatalf("a report made before both launches lost tasks: %d staging, want 2", len(got))
	}
	if n := testutil.ToFloat64(m.metrics.lostFromReports); n != 0 {
		t.Fatalf("lost from reports = %v, want 0", n)
	}
	// Made after the first launch, before the second: the first, absent,
	// is gone; the second is not judged.
	report(events.LaunchMark{Run: "r1", N: 7}, events.TaskReport{TaskID: second.ID, AppID: "/web", State: events.TaskRunning})
	if n := testutil.ToFloat64(m.metrics.lostFromReports); n != 1 {
		t.Fatalf("lost from reports = %v after a report made with the first task in hand lacked it, want 1", n)
	}
	// Another run of the agent (restarted) made the report: by time.
	m.live.launchAcked(second.ID, clock.Now(), &events.LaunchMark{Run: "r1", N: 8})
	report(events.LaunchMark{Run: "r2", N: 0})
	if got := tasksIn(m, "/web", events.TaskRunning); len(got) != 1 {
		t.Fatalf("a report of another run %v after the ack lost the task: %d running, want 1", 0, len(got))
	}
	clock.Advance(2 * reportAfterAck)
	report(events.LaunchMark{Run: "r2", N: 0})
	if n := testutil.ToFloat64(m.metrics.lostFromReports); n != 2 {
		t.Errorf("lost from reports = %v after another run's report two seconds after the ack, want 2", n)
	}
}

// A heartbeat that repeats a report which matched the state is counted
// and costs no decode, but only while nothing on the agent changed: once
// a task is staged there, the same report is reconciled again, and once
// the launch was acked long enough before it, its absence loses the task.
func TestSettledHeartbeatsSkipOnlyWhileNothingChanged(t *testing.T) {
	m, clock := leadingMaster(t)
	id := addAgent(t, m, "h1", "127.0.0.9")
	createApp(t, m, `{"id": "/web", "cmd": "sleep 100", "instances": 1}`)
	reconcile(t, m)
	first := tasksIn(m, "/web", events.TaskStaging)[0]
	setStatus(t, m, first.ID, events.TaskRunning)
	beat := func(ids ...string) {
		hb := events.Heartbeat{AgentID: id}
		for _, tid := range ids {
			hb.Tasks = append(hb.Tasks, events.TaskReport{TaskID: tid, AppID: "/web", State: events.TaskRunning})
		}
		data, _ := json.Marshal(hb)
		m.handleHeartbeat(&nats.Msg{Subject: m.cfg.Subjects.Heartbeat("h1"), Data: data})
		reconcile(t, m)
	}
	settled := func() float64 { return testutil.ToFloat64(m.metrics.heartbeatsSettled) }

	beat(first.ID) // matches the state: settles
	beat(first.ID)
	beat(first.ID)
	if n := settled(); n != 2 {
		t.Fatalf("settled heartbeats after three identical ones = %v, want 2", n)
	}
	// A second instance is staged and acked on the agent: the same report
	// no longer says everything.
	scaleTo(t, m, "/web", 2)
	reconcile(t, m)
	second := tasksIn(m, "/web", events.TaskStaging)[0]
	m.live.launchAcked(second.ID, clock.Now(), nil)
	clock.Advance(2 * reportAfterAck)
	beat(first.ID)
	if n := settled(); n != 2 {
		t.Errorf("a heartbeat after a change was skipped (settled %v, want 2)", n)
	}
	if lost := testutil.ToFloat64(m.metrics.lostFromReports); lost != 1 {
		t.Errorf("lost from reports = %v, want 1: the acked task the report lacks", lost)
	}
}

// scaleTo sets an app's instances, forcing past its deployment.
func scaleTo(t *testing.T, m *Master, appID string, n int) {
	t.Helper()
	if _, err := m.UpdateApp(appID, func(a *events.App) (events.App, error) {
		next := *a
		next.Instances = n
		return next, nil
	}, true); err != nil {
		t.Fatal(err)
	}
}

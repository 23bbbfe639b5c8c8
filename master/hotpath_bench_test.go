package master

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/master/scheduler"
)

// The master's hot paths at 100,000 tasks (bench/scale's largest size):
// a POST /v2/apps, one agent's heartbeat report, and one reconcile pass
// of a 10,000-instance scale-up. Each works on benchState, as the master
// holds it, with the committer storing in memory and publishing on an
// embedded NATS server.

// cpuMeter adds up the process's CPU time (every goroutine's, the
// committer's and the collector's included) over the timed parts of a
// benchmark: on a machine shared with other work, wall time per op says
// more about the neighbours than about the code.
type cpuMeter struct {
	from  time.Duration
	total time.Duration
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (c *cpuMeter) start() { c.from = cpuNow() }
func (c *cpuMeter) stop()  { c.total += cpuNow() - c.from }

// report prints the CPU time per op in microseconds.
func (c *cpuMeter) report(b *testing.B, ops int) {
	if ops > 0 {
		b.ReportMetric(float64(c.total.Microseconds())/float64(ops), "cpu-µs/op")
	}
}

// newBenchMaster is a leading master holding benchState, its agents
// heard from now.
func newBenchMaster(b *testing.B) (*Master, http.Handler) {
	m, h := newAPI(b, "")
	m.mu.Lock()
	defer m.mu.Unlock()
	st := benchState()
	st.Epoch, st.Seq = m.state.Epoch, m.state.Seq
	st.Leader = m.state.Leader
	m.state = st
	now := m.cfg.Now()
	for id, a := range st.Agents {
		m.live.set(id, events.NodeToken(a.Hostname), true, now)
	}
	return m, h
}

// BenchmarkPostApp100k is POST /v2/apps end to end through the handler,
// as bench/scale posts them, with a batch of 100 deployments under way.
func BenchmarkPostApp100k(b *testing.B) {
	m, h := newBenchMaster(b)
	// Free the top of the service port range for the new apps: the
	// lowest free port is then found past 9,900 used ones, as in
	// bench/scale at its largest size.
	m.mu.Lock()
	for a := 9900; a < 10000; a++ {
		id := fmt.Sprintf("/bench/app%05d", a)
		app := m.state.Apps[id]
		app.PortDefinitions = nil
		m.state.Apps[id] = app
	}
	for a := range 100 {
		if err := m.commitLocked(events.PutDeployment(newDeployment(fmt.Sprintf("/bench/app%05d", a), "StartApplication", m.cfg.Now()))); err != nil {
			b.Fatal(err)
		}
	}
	m.mu.Unlock()
	var created []string
	n := 0
	var cpu cpuMeter
	b.ReportAllocs()
	runtimeGC()
	cpu.start()
	for b.Loop() {
		id := fmt.Sprintf("/post/app%06d", n)
		n++
		body := `{"id":"` + id + `","cmd":"sleep 1000000","instances":10,"cpus":0.01,"mem":1,"portDefinitions":[{"port":0,"protocol":"tcp"}]}`
		req := httptest.NewRequest(http.MethodPost, "/v2/apps", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			b.Fatalf("POST %s: %d %s", id, rec.Code, rec.Body)
		}
		created = append(created, id)
		if len(created) == 50 {
			b.StopTimer()
			cpu.stop()
			removeBenchApps(b, m, created)
			created = created[:0]
			cpu.start()
			b.StartTimer()
		}
	}
	cpu.stop()
	cpu.report(b, n)
}

// removeBenchApps takes the apps out again with their deployments, so the
// state stays at its size.
func removeBenchApps(b *testing.B, m *Master, ids []string) {
	m.mu.Lock()
	var changes []events.Change
	for _, id := range ids {
		for _, d := range m.deploymentsOfLocked(id) {
			changes = append(changes, events.DeleteDeployment(d))
		}
		changes = append(changes, events.DeleteApp(id))
	}
	err := m.commitLocked(changes...)
	d := m.durableLocked()
	m.mu.Unlock()
	if err == nil {
		err = d.wait()
	}
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHeartbeat100k is one agent's heartbeat of its 100 tasks, all
// running as the state has them, received and then reconciled by a pass,
// while the agent has a change since its last settled report (as during
// growth, when the settled hash does not spare the work): "repeated"
// sends the same bytes as the heartbeat before, "new" other bytes each
// time (the same tasks in another order).
func BenchmarkHeartbeat100k(b *testing.B) {
	m, _ := newBenchMaster(b)
	const agent = "agent-0007-S7"
	var host string
	var reports []events.TaskReport
	m.View(func(s *events.State) {
		host = s.Agents[agent].Hostname
		for _, t := range s.TasksOn(agent) {
			reports = append(reports, events.TaskReport{TaskID: t.ID, AppID: t.AppID, State: events.TaskRunning})
		}
	})
	var msgs []*nats.Msg
	for range 2 {
		data, err := json.Marshal(events.Heartbeat{AgentID: agent, Tasks: reports})
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, &nats.Msg{Subject: m.cfg.Subjects.Heartbeat(host), Data: data})
		slices.Reverse(reports)
	}
	for _, bytes := range []string{"repeated", "new"} {
		b.Run(bytes, func(b *testing.B) {
			b.ReportMetric(float64(len(reports)), "tasks")
			var cpu cpuMeter
			n := 0
			b.ReportAllocs()
			runtimeGC()
			cpu.start()
			for b.Loop() {
				msg := msgs[0]
				if bytes == "new" {
					msg = msgs[n%2]
				}
				m.live.changed(agent)
				m.handleHeartbeat(msg)
				m.mu.Lock()
				m.applyReportsLocked(m.cfg.Now())
				m.mu.Unlock()
				n++
			}
			cpu.stop()
			cpu.report(b, n)
		})
	}
}

// BenchmarkReconcileScaleUp100k is one reconcile pass of bench/scale's
// scale-up: an app of 10,000 instances, none running yet, on 1,000 agents
// that run 100,000 tasks; the pass stages 1,000 and the time includes
// their batch's store write and publication.
func BenchmarkReconcileScaleUp100k(b *testing.B) {
	m, _ := newBenchMaster(b)
	m.mu.Lock()
	base := m.state.Clone()
	app := events.App{ID: "/sim/scale", Cmd: "sleep 1000000", Instances: 10000, Cpus: 0.01, Mem: 1,
		PortDefinitions: []events.PortDefinition{{Port: 20000, Protocol: "tcp"}}}
	app.Version = m.cfg.Now()
	base.Apps[app.ID] = app
	m.mu.Unlock()
	var cpu cpuMeter
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		m.mu.Lock()
		st := base.Clone()
		st.Epoch, st.Seq, st.Leader = m.state.Epoch, m.state.Seq, m.state.Leader
		m.state = st
		m.runtime = newRuntime()
		m.runtime.dirty.apps[app.ID] = struct{}{}
		m.runtime.pool = scheduler.NewPool(m.state)
		m.mu.Unlock()
		runtimeGC()
		b.StartTimer()
		cpu.start()

		m.reconcileOnce()
		m.mu.Lock()
		launched := len(m.runtime.staging)
		d := m.durableLocked()
		m.mu.Unlock()
		if err := d.wait(); err != nil {
			b.Fatal(err)
		}
		if launched != maxLaunchesPerPass {
			b.Fatalf("staged %d, want %d", launched, maxLaunchesPerPass)
		}
		cpu.stop()
		n++
		b.StopTimer()
		captured.Range(func(_, c any) bool { c.(*capturedSends).take(); return true })
		b.StartTimer()
	}
	cpu.report(b, n)
}

// runtimeGC collects the garbage of a benchmark's set-up before the timed
// part, so that the timed part does not pay for it.
func runtimeGC() { goruntime.GC() }

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/simagent"
)

// The load TestBusyMasterKeepsAgentsAndLaunches puts on the master: a
// deploy of busyApps apps of busyInstances instances each onto busySims
// simulated agents (issue 13: the master of 2 December 2026 stalled at
// about 4,000 tasks on 100 of them).
const (
	busySims      = 200
	busyApps      = 100
	busyInstances = 50
	// busyDeadline is how long the whole deploy may take to run.
	busyDeadline = 40 * time.Second
)

// TestBusyMasterKeepsAgentsAndLaunches holds the master busy with a large
// deploy (5,000 instances on 200 simulated agents, which ack launches after
// 20 ms as a process start takes) while two real agents run an app of
// their own, and checks what issue 13 says a busy master must not do: no
// real agent is declared unreachable (they heartbeat every 250 ms; the
// master gives up on one after 5 s of silence), none of their tasks is
// replaced, no launch an agent acked is killed as unknown or lost from a
// report (the master's counters, and the simulated agents' own count of
// kills of tasks whose launch they acked: nothing here is scaled down),
// and the deploy completes.
func TestBusyMasterKeepsAgentsAndLaunches(t *testing.T) {
	c := startCluster(t, clusterOptions{agents: 2, agentTimeout: 5 * time.Second})

	// The real agents' app, kept off the simulated agents.
	real := echoApp("/real/echo", 4, []string{"region", "LIKE", "r[0-9]+"})
	c.mustDo("POST", "/v2/apps", real, 201, nil)
	before := c.waitRunning("/real/echo", 4, 30*time.Second)

	unreachable := watchUnreachable(t, c)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fleet, err := simagent.StartFleet(ctx, func(node string) (*nats.Conn, error) {
		return c.nats.Connect(natsauth.RoleAgent, node)
	}, busySims, "sim-", simagent.Config{
		Resources:   events.Resources{Cpus: 64, Mem: 256 * 1024, Disk: 1024 * 1024, Ports: []events.PortRange{{Begin: 31000, End: 41000}}},
		Attributes:  map[string]string{"sim": "yes"},
		LaunchDelay: 20 * time.Millisecond,
	})
	t.Cleanup(func() {
		if fleet != nil {
			fleet.Stop()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	c.waitFor(30*time.Second, fmt.Sprintf("%d active agents", busySims+2), func() (bool, string) {
		n := c.activeAgents()
		return n == busySims+2, fmt.Sprintf("%d active", n)
	})

	// The deploy: every app POSTed as fast as the master takes them.
	slow := &http.Client{Timeout: 60 * time.Second}
	start := time.Now()
	var postMax time.Duration
	for i := range busyApps {
		app := map[string]any{
			"id": fmt.Sprintf("/sim/app-%03d", i), "cmd": "sleep 1000000", "instances": busyInstances,
			"cpus": 0.01, "mem": 1, "portDefinitions": []map[string]any{{"port": 0}},
			"constraints": [][]string{{"sim", "LIKE", "yes"}},
		}
		t0 := time.Now()
		code, body := httpDo(slow, c.api, "POST", "/v2/apps", app)
		postMax = max(postMax, time.Since(t0))
		if code != 201 {
			t.Fatalf("POST app %d: status %d: %s", i, code, body)
		}
		if time.Since(start) > busyDeadline {
			t.Errorf("the deploy's POSTs took over %s: %d of %d apps posted", busyDeadline, i+1, busyApps)
			break
		}
	}
	posted := time.Since(start)
	want := busyApps * busyInstances
	var m masterMetrics
	deadline := start.Add(busyDeadline)
	for {
		m = readMasterMetrics(slow, c.api)
		if m.err == nil && m.values[`atoll_master_tasks{state="TASK_RUNNING"}`] >= float64(want+4) && m.values["atoll_master_deployments"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	took := time.Since(start)
	fc := fleet.Counters.Snapshot()
	t.Logf("%d instances on %d simulated agents: POSTs took %s (slowest %s), deploy %s; master: %s; simulated agents: %s",
		want, busySims, posted.Round(time.Millisecond), postMax.Round(time.Millisecond), took.Round(time.Millisecond), m, fc)

	if m.err != nil {
		t.Errorf("/metrics: %v", m.err)
	}
	if running := m.values[`atoll_master_tasks{state="TASK_RUNNING"}`]; running < float64(want+4) || m.values["atoll_master_deployments"] != 0 {
		t.Errorf("deploy not complete after %s: %.0f of %d tasks running, %.0f deployments in progress",
			busyDeadline, running, want+4, m.values["atoll_master_deployments"])
	}
	if names := unreachable(); len(names) > 0 {
		t.Errorf("agents declared unreachable while they heartbeated: %s", strings.Join(names, ", "))
	}
	if n := m.values["atoll_master_unknown_task_kills_total"]; n > 0 {
		t.Errorf("the master killed %.0f tasks as unknown (atoll_master_unknown_task_kills_total)", n)
	}
	if n := m.values["atoll_master_tasks_lost_from_reports_total"]; n > 0 {
		t.Errorf("the master marked %.0f tasks lost from their agent's report (atoll_master_tasks_lost_from_reports_total)", n)
	}
	if fc.KillsOfAcked > 0 {
		t.Errorf("the simulated agents were asked to kill %d running tasks whose launch they had acked", fc.KillsOfAcked)
	}
	after := c.tasks("/real/echo")
	if !sameTaskIDs(before, after) || countState(after, "TASK_RUNNING") != 4 {
		t.Errorf("the real agents' tasks changed under load: before %v, after %v (%d running)", ids(before), ids(after), countState(after, "TASK_RUNNING"))
	}
}

// watchUnreachable follows the master's events on an observer credential
// and returns what lists the hostnames of agents declared unreachable
// since.
func watchUnreachable(t *testing.T, c *cluster) func() []string {
	t.Helper()
	nc := c.nats.connect(natsauth.RoleObserver, "busy-watch")
	var mu sync.Mutex
	seen := map[string]bool{}
	var names []string
	sub, err := nc.Subscribe(events.Subjects{}.AllEvents(), func(m *nats.Msg) {
		e, err := events.DecodeEvent(m.Data)
		if err != nil || e.Type != events.AgentUpdated || e.Agent == nil || e.Agent.State != events.AgentUnreachable {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !seen[e.Agent.Hostname] {
			seen[e.Agent.Hostname] = true
			names = append(names, e.Agent.Hostname)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		// The real agents first: they are what the test is about.
		var out []string
		for _, n := range names {
			if strings.HasPrefix(n, "agent-") {
				out = append(out, n)
			}
		}
		if sims := len(names) - len(out); sims > 0 {
			out = append(out, fmt.Sprintf("%d simulated agents", sims))
		}
		return out
	}
}

// masterMetrics are the samples of the master's /metrics, by name with
// labels.
type masterMetrics struct {
	values map[string]float64
	err    error
}

func (m masterMetrics) String() string {
	if m.err != nil {
		return m.err.Error()
	}
	v := m.values
	return fmt.Sprintf("%.0f running, %.0f staging, %.0f wanted, %.0f deployments, agents %.0f active / %.0f unreachable, "+
		"%.0f launches staged, %.0f unknown-task kills, %.0f lost from reports, %.0f failures, %.0f reconcile passes (%.1f ms mean)",
		v[`atoll_master_tasks{state="TASK_RUNNING"}`], v[`atoll_master_tasks{state="TASK_STAGING"}`], v["atoll_master_instances_wanted"],
		v["atoll_master_deployments"], v[`atoll_master_agents{state="active"}`], v[`atoll_master_agents{state="unreachable"}`],
		v["atoll_master_task_launches_total"], v["atoll_master_unknown_task_kills_total"], v["atoll_master_tasks_lost_from_reports_total"],
		v["atoll_master_task_failures_total"], v["atoll_master_reconcile_seconds_count"],
		1000*v["atoll_master_reconcile_seconds_sum"]/max(v["atoll_master_reconcile_seconds_count"], 1))
}

func readMasterMetrics(client *http.Client, api string) masterMetrics {
	code, body := httpDo(client, api, "GET", "/metrics", nil)
	if code != 200 {
		return masterMetrics{err: fmt.Errorf("status %d: %.200s", code, body)}
	}
	m := masterMetrics{values: map[string]float64{}}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m.values[line[:i]] = v
		}
	}
	return m
}

// httpDo is cluster.do with a client of the caller's (a longer timeout).
func httpDo(client *http.Client, api, method, path string, body any) (int, []byte) {
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, api+path, r)
	if err != nil {
		return 0, []byte(err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

package master

import (
	"math"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// /master/state shows each agent's usage, measured by the agent from its
// tasks' cgroups, next to what its tasks were allocated: memory as last
// read, CPU as the rate between the last two readings.
func TestMesosStateShowsAgentUsage(t *testing.T) {
	m, h, agent := withTasks(t)
	slave := func() map[string]any {
		return at(t, call(t, h, "GET", "/master/state", "").json(t), "slaves", 0).(map[string]any)
	}
	if u, ok := slave()["usage"]; ok {
		t.Fatalf("usage %v before any report of it, want none", u)
	}
	report := func(at float64, cpu1, cpu2 float64) []events.TaskReport {
		return []events.TaskReport{
			{TaskID: "web.1", AppID: "/web", State: events.TaskRunning, Statistics: &events.ResourceStatistics{
				Timestamp: at, CpusUserTimeSecs: cpu1, MemTotalBytes: 10 << 20}},
			{TaskID: "web.2", AppID: "/web", State: events.TaskRunning, Statistics: &events.ResourceStatistics{
				Timestamp: at, CpusUserTimeSecs: cpu2 / 2, CpusSystemTimeSecs: cpu2 / 2, MemTotalBytes: 22 << 20}},
		}
	}
	node, now := nodeOf(m, agent.ID), eventstest.T0.Add(time.Minute)
	m.live.heardFrom(agent.ID, node, now) // an active agent, as registered
	for i, hb := range [][]events.TaskReport{
		report(1000, 5, 1),
		{{TaskID: "web.1", AppID: "/web", State: events.TaskRunning}}, // most heartbeats carry none
		report(1010, 6, 3), // 0.1 + 0.2 cores over 10 s
	} {
		if v, _ := m.live.heartbeat(agent.ID, node, now, hb, nil, uint64(i+1)); v != heartbeatOK {
			t.Fatalf("heartbeat %d: verdict %v", i, v)
		}
	}
	u, ok := slave()["usage"].(map[string]any)
	if !ok {
		t.Fatalf("no usage in %v", slave())
	}
	if cpus := u["cpus"].(float64); math.Abs(cpus-0.3) > 1e-9 {
		t.Errorf("usage cpus = %v, want 0.3", cpus)
	}
	if mem := u["mem"].(float64); mem != 32 {
		t.Errorf("usage mem = %v MB, want 32", mem)
	}
	if ts := u["timestamp"].(float64); ts != 1010 {
		t.Errorf("usage timestamp = %v, want 1010", ts)
	}
}

package master

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// groupsBenchState is issue 14's size: 1,000 apps of 3 tasks, in 20
// groups of 50 apps (/bench/gNN/appNNNN), on 100 agents.
func groupsBenchState() *events.State {
	s := events.NewState()
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		id := fmt.Sprintf("agent-%03d-S%d", i, i)
		s.Agents[id] = events.Agent{ID: id, Hostname: fmt.Sprintf("h%d", i), IP: "127.0.0.1", State: events.AgentActive,
			Resources: events.Resources{Cpus: 64, Mem: 262144, Disk: 100000, Ports: []events.PortRange{{Begin: 31000, End: 41000}}}}
	}
	for a := range 1000 {
		appID := fmt.Sprintf("/bench/g%02d/app%04d", a/50, a)
		s.Apps[appID] = events.App{ID: appID, Cmd: "sleep 1000", Instances: 3, Cpus: 0.01, Mem: 1,
			PortDefinitions: []events.PortDefinition{{Port: 10000 + a, Protocol: "tcp"}},
			Version:         at, VersionInfo: events.VersionInfo{LastScalingAt: at, LastConfigChangeAt: at}}
		for k := range 3 {
			tid := fmt.Sprintf("bench_g%02d_app%04d.%d", a/50, a, k)
			agent := fmt.Sprintf("agent-%03d-S%d", (a*3+k)%100, (a*3+k)%100)
			s.Tasks[tid] = events.Task{ID: tid, AppID: appID, AgentID: agent, Host: s.Agents[agent].Hostname,
				IPAddresses: []events.IPAddress{{IPAddress: "127.0.0.1", Protocol: "IPv4"}},
				Ports:       []int{31000 + k}, State: events.TaskRunning, StagedAt: at, Version: at, ConfigVersion: at}
		}
	}
	s.IndexByAgent()
	return s
}

// BenchmarkGroupsRead1k times GET /v2/groups?embed=group.apps.tasks (the
// whole tree, every app with its tasks) next to GET
// /v2/apps?embed=apps.tasks, at 1,000 apps x 3 tasks, and prints each
// one's p50 and p99 (Marathon's /v2/apps took seconds at a few thousand
// tasks, its issues say). "cold" reads come after every app changed, so
// every app is encoded again, as a term's first read.
func BenchmarkGroupsRead1k(b *testing.B) {
	m, h := newAPI(b, "")
	m.mu.Lock()
	st := groupsBenchState()
	st.Epoch, st.Seq, st.Leader = m.state.Epoch, m.state.Seq, m.state.Leader
	m.state = st
	m.reads.reset(st)
	m.mu.Unlock()
	for _, path := range []string{
		"/v2/groups?embed=group.groups&embed=group.apps&embed=group.apps.tasks",
		"/v2/apps?embed=apps.tasks",
		"/v2/groups?embed=group.groups&embed=group.apps&embed=group.apps.tasks cold",
		"/v2/apps?embed=apps.tasks cold",
	} {
		path, cold := strings.CutSuffix(path, " cold")
		name := strings.TrimPrefix(path, "/")
		if cold {
			name += " cold"
		}
		b.Run(name, func(b *testing.B) {
			var took []time.Duration
			size := 0
			for b.Loop() {
				if cold {
					b.StopTimer()
					m.reads.reset(st)
					b.StartTimer()
				}
				start := time.Now()
				rec := &countingResponse{header: http.Header{}}
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				took = append(took, time.Since(start))
				if rec.code != 200 {
					b.Fatalf("GET %s: %d", path, rec.code)
				}
				size = rec.size
			}
			slices.Sort(took)
			p := func(q float64) float64 { return float64(took[int(q*float64(len(took)-1))]) / 1e6 }
			b.ReportMetric(p(0.5), "p50-ms")
			b.ReportMetric(p(0.99), "p99-ms")
			b.ReportMetric(float64(size)/1e6, "MB")
		})
	}
}

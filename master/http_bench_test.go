package master

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// benchState is 100,000 tasks: 10,000 apps of 10 on 1,000 agents.
func benchState() *events.State {
	s := events.NewState()
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		id := fmt.Sprintf("agent-%04d-S%d", i, i)
		s.Agents[id] = events.Agent{ID: id, Hostname: fmt.Sprintf("h%d", i), IP: "127.0.0.1", State: events.AgentActive,
			Resources: events.Resources{Cpus: 64, Mem: 262144, Disk: 100000, Ports: []events.PortRange{{Begin: 31000, End: 41000}}}}
	}
	for a := range 10000 {
		appID := fmt.Sprintf("/bench/app%05d", a)
		s.Apps[appID] = events.App{ID: appID, Cmd: "sleep 1000", Instances: 10, Cpus: 0.01, Mem: 1,
			PortDefinitions: []events.PortDefinition{{Port: 10000 + a, Protocol: "tcp"}},
			Version:         at, VersionInfo: events.VersionInfo{LastScalingAt: at, LastConfigChangeAt: at}}
		for k := range 10 {
			tid := fmt.Sprintf("bench_app%05d.%d", a, k)
			agent := fmt.Sprintf("agent-%04d-S%d", (a*10+k)%1000, (a*10+k)%1000)
			s.Tasks[tid] = events.Task{ID: tid, AppID: appID, AgentID: agent, Host: s.Agents[agent].Hostname,
				IPAddresses: []events.IPAddress{{IPAddress: "127.0.0.1", Protocol: "IPv4"}},
				Ports:       []int{31000 + k}, State: events.TaskRunning, StagedAt: at, Version: at, ConfigVersion: at}
		}
	}
	s.IndexByAgent() // as the master keeps it
	return s
}

// BenchmarkAPIReads100k times the API's big reads at 100,000 tasks, alone
// on the machine (bench/scale times them with a fleet on the same cores).
func BenchmarkAPIReads100k(b *testing.B) {
	m, h := newAPI(b, "")
	m.mu.Lock()
	st := benchState()
	st.Epoch, st.Seq = m.state.Epoch, m.state.Seq
	st.Leader = m.state.Leader
	m.state = st
	m.reads.reset(st)
	m.mu.Unlock()
	// A read after every app changed encodes them all again, as the first
	// read of a term does; otherwise unchanged apps' JSON is reused.
	for _, path := range []string{"/v2/apps", "/v2/apps?embed=apps.tasks", "/v2/tasks", "/master/state",
		"/v2/apps after every app changed", "/v2/apps?embed=apps.tasks after every app changed"} {
		path, cold := strings.CutSuffix(path, " after every app changed")
		name := path
		if cold {
			name += " after every app changed"
		}
		b.Run(name, func(b *testing.B) {
			size := 0
			for b.Loop() {
				if cold {
					b.StopTimer()
					m.reads.reset(st)
					b.StartTimer()
				}
				rec := &countingResponse{header: http.Header{}}
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.code != 200 {
					b.Fatalf("GET %s: %d", path, rec.code)
				}
				size = rec.size
			}
			b.ReportMetric(float64(size)/1e6, "MB")
		})
	}
}

// countingResponse counts an answer's bytes and keeps none: a benchmark
// times the master's side of an answer, not a client's buffer growing.
type countingResponse struct {
	header     http.Header
	code, size int
}

func (r *countingResponse) Header() http.Header { return r.header }

func (r *countingResponse) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *countingResponse) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	r.size += len(p)
	return len(p), nil
}

package scheduler

import (
	"fmt"
	"testing"

	"github.com/atollhq/atoll/events"
)

// BenchmarkPlace100On100Agents places 100 instances with UNIQUE hostname
// on 100 agents that already run 1,000 tasks of other apps.
func BenchmarkPlace100On100Agents(b *testing.B) {
	s := events.NewState()
	for i := 0; i < 100; i++ {
		id := fmt.Sprintf("agent-%03d", i)
		s.Agents[id] = events.Agent{ID: id, Hostname: id, IP: "127.0.0.1", State: events.AgentActive,
			Attributes: map[string]string{"region": fmt.Sprintf("r%d", i%3)},
			Resources:  events.Resources{Cpus: 64, Mem: 65536, Disk: 100000, Ports: []events.PortRange{{Begin: 31000, End: 32000}}}}
	}
	for i := 0; i < 1000; i++ {
		ag := fmt.Sprintf("agent-%03d", i%100)
		s.Tasks[fmt.Sprintf("other.%d", i)] = events.Task{ID: fmt.Sprintf("other.%d", i), AppID: "/other", AgentID: ag, Host: ag,
			State: events.TaskRunning, Cpus: 0.1, Mem: 32, Ports: []int{31000 + i/100}}
	}
	app := events.App{ID: "/web", Instances: 100, Cpus: 0.1, Mem: 32,
		PortDefinitions: []events.PortDefinition{{Port: 10000}}, Constraints: [][]string{{"hostname", "UNIQUE"}}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := Place(s, app, 100); len(r.Placements) != 100 {
			b.Fatalf("placed %d of 100: %s", len(r.Placements), r.Reason)
		}
	}
}

// BenchmarkPlaceIn1000On1000Busy places 1,000 instances of one app (one
// reconcile pass of a 10,000-instance scale-up) on 1,000 agents that run
// 100 tasks each, on a pool kept between passes as the master keeps it.
func BenchmarkPlaceIn1000On1000Busy(b *testing.B) {
	s := events.NewState()
	for i := 0; i < 1000; i++ {
		id := fmt.Sprintf("agent-%04d", i)
		s.Agents[id] = events.Agent{ID: id, Hostname: id, IP: "127.0.0.1", State: events.AgentActive,
			Resources: events.Resources{Cpus: 64, Mem: 262144, Disk: 100000, Ports: []events.PortRange{{Begin: 31000, End: 41000}}}}
		for j := 0; j < 100; j++ {
			tid := fmt.Sprintf("other.%d.%d", i, j)
			s.Tasks[tid] = events.Task{ID: tid, AppID: fmt.Sprintf("/other%d", j), AgentID: id, Host: id,
				State: events.TaskRunning, Cpus: 0.01, Mem: 1, Ports: []int{31000 + j}}
		}
	}
	s.Reindex()
	app := events.App{ID: "/web", Instances: 10000, Cpus: 0.01, Mem: 1, PortDefinitions: []events.PortDefinition{{Port: 10000}}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pool := NewPool(s)
		b.StartTimer()
		if r := PlaceIn(pool, s, app, 1000); len(r.Placements) != 1000 {
			b.Fatalf("placed %d of 1000: %s", len(r.Placements), r.Reason)
		}
	}
}

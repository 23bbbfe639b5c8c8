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

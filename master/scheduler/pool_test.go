package scheduler

import (
	"fmt"
	"testing"

	"github.com/atollhq/atoll/events"
)

// What Place books on a pool is what the pool refreshed from the state
// holds once the placed tasks are staged, to the last bit: the master
// refreshes an agent only when something other than its own placements
// changed it, so a booked pool must place the next instance where a fresh
// one would.
func TestBookedPoolIsARefreshedOne(t *testing.T) {
	s := events.NewState()
	for _, id := range []string{"1", "2", "3"} {
		s.Agents[id] = ported(sized(agent(id), 3.3, 1000.7, 99.9), events.PortRange{Begin: 31000, End: 31200})
	}
	// Tasks already there, with sums that do not add up exactly in floats.
	for i := range 7 {
		tk := withPorts(task(fmt.Sprintf("old.%d", i), "/old", fmt.Sprint(1+i%3), i), 31000+i)
		tk.Cpus, tk.Mem, tk.Disk = 0.1, 10.3, 0.7
		s.Tasks[tk.ID] = tk
	}
	s.IndexByAgent()
	a := events.App{ID: "/new", Cpus: 0.01, Mem: 1.1, Disk: 0.3,
		PortDefinitions: []events.PortDefinition{{Port: 0, Protocol: "tcp"}}}
	pool := NewPool(s)
	res := PlaceIn(pool, s, a, 100)
	if len(res.Placements) != 100 {
		t.Fatalf("placed %d of 100: %s", len(res.Placements), res.Reason)
	}
	for i, pl := range res.Placements {
		id := fmt.Sprintf("new.%d", i)
		s.Tasks[id] = events.Task{ID: id, AppID: a.ID, AgentID: pl.AgentID, State: events.TaskStaging,
			Ports: pl.Ports, Cpus: a.Cpus, Mem: a.Mem, Disk: a.Disk}
	}
	s.IndexByAgent()
	fresh := NewPool(s)
	for id, want := range fresh.byID {
		got := pool.byID[id]
		if got.cpus != want.cpus || got.mem != want.mem || got.disk != want.disk || got.held != want.held || got.floor != want.floor {
			t.Errorf("agent %s booked: cpus %v mem %v disk %v floor %d; refreshed: cpus %v mem %v disk %v floor %d",
				id, got.cpus, got.mem, got.disk, got.floor, want.cpus, want.mem, want.disk, want.floor)
		}
		if len(got.used) != len(want.used) {
			t.Errorf("agent %s booked: %d ports used, refreshed: %d", id, len(got.used), len(want.used))
		}
		for p := range want.used {
			if !got.used[p] {
				t.Errorf("agent %s: port %d used by a staged task, not booked", id, p)
			}
		}
	}
}

package scheduler

import (
	"fmt"
	"time"

	"github.com/atollhq/atoll/events"
)

// agent builds an active agent whose hostname differs from its id, so tests
// notice when one is used for the other. attrs are key, value pairs.
func agent(id string, attrs ...string) events.Agent {
	a := events.Agent{
		ID:       id,
		Hostname: "host-" + id,
		IP:       "10.0.0." + id,
		Resources: events.Resources{
			Cpus:  4,
			Mem:   4096,
			Disk:  10000,
			Ports: []events.PortRange{{Begin: 31000, End: 31009}},
		},
		Attributes: map[string]string{},
		State:      events.AgentActive,
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		a.Attributes[attrs[i]] = attrs[i+1]
	}
	return a
}

// sized changes an agent's cpus, mem and disk.
func sized(a events.Agent, cpus, mem, disk float64) events.Agent {
	a.Resources.Cpus, a.Resources.Mem, a.Resources.Disk = cpus, mem, disk
	return a
}

// ported changes an agent's port ranges.
func ported(a events.Agent, rs ...events.PortRange) events.Agent {
	a.Resources.Ports = rs
	return a
}

// app builds an app of 1 cpu, 128 MB, no ports.
func app(id string, constraints ...[]string) events.App {
	return events.App{ID: id, Cpus: 1, Mem: 128, Disk: 0, Constraints: constraints}
}

// base is the time tasks are staged relative to.
var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// task builds a running task of appID on agentID, staged min minutes after
// base, holding 1 cpu and 128 MB.
func task(id, appID, agentID string, staged int) events.Task {
	return events.Task{
		ID:       id,
		AppID:    appID,
		AgentID:  agentID,
		Host:     "host-" + agentID,
		State:    events.TaskRunning,
		StagedAt: base.Add(time.Duration(staged) * time.Minute),
		Cpus:     1,
		Mem:      128,
	}
}

func withState(t events.Task, st events.TaskState) events.Task {
	t.State = st
	return t
}

func withHealth(t events.Task, healthy bool) events.Task {
	t.Healthy = &healthy
	return t
}

func withPorts(t events.Task, ports ...int) events.Task {
	t.Ports = ports
	return t
}

// cluster builds a state from agents and tasks.
func cluster(agents []events.Agent, tasks ...events.Task) *events.State {
	s := events.NewState()
	for _, a := range agents {
		s.Agents[a.ID] = a
	}
	for _, t := range tasks {
		if _, dup := s.Tasks[t.ID]; dup {
			panic(fmt.Sprintf("duplicate task %s", t.ID))
		}
		s.Tasks[t.ID] = t
	}
	return s
}

func agents(as ...events.Agent) []events.Agent { return as }

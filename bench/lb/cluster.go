package main

import (
	"fmt"
	"time"

	"github.com/atollhq/atoll/events"
)

// The synthetic cluster: one agent on 127.0.0.1, apps in HTTP mode with
// one service port each (every tenth also has a vhost), tasks whose
// address is a port on loopback.

const agentID = "agent-0"

func benchAgent() events.Agent {
	return events.Agent{ID: agentID, Hostname: "127.0.0.1", IP: "127.0.0.1", State: events.AgentActive,
		Resources: events.Resources{Cpus: 1024, Mem: 1 << 22}}
}

func appID(i int) string { return fmt.Sprintf("/bench/app%05d", i) }

// benchApp is app i serving servicePort with the given instance count.
func benchApp(i, servicePort, instances int) events.App {
	labels := map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"}
	if i%10 == 0 {
		labels["HAPROXY_0_VHOST"] = fmt.Sprintf("app%05d.bench.local", i)
	}
	return events.App{ID: appID(i), Cmd: "bench", Instances: instances, Cpus: 0.1, Mem: 32, Labels: labels,
		PortDefinitions: []events.PortDefinition{{Port: servicePort, Protocol: "tcp"}}}
}

// benchTask is a task of app i listening on 127.0.0.1:port.
func benchTask(app int, id string, port int, state events.TaskState) events.Task {
	now := time.Now().UTC()
	return events.Task{ID: id, AppID: appID(app), AgentID: agentID, Host: "127.0.0.1",
		IPAddresses: []events.IPAddress{{IPAddress: "127.0.0.1", Protocol: "IPv4"}},
		Ports:       []int{port}, State: state, StagedAt: now, StartedAt: &now}
}

// clusterChanges are the changes that build apps [0, n) with perApp tasks
// each; servicePort and taskPort say where app i listens and where its
// task k does.
func clusterChanges(n, perApp int, servicePort func(i int) int, taskPort func(i, k int) int) []events.Change {
	cs := make([]events.Change, 0, 1+n*(1+perApp))
	cs = append(cs, events.PutAgent(benchAgent()))
	for i := 0; i < n; i++ {
		cs = append(cs, events.PutApp(benchApp(i, servicePort(i), perApp)))
		for k := 0; k < perApp; k++ {
			cs = append(cs, events.PutTask(benchTask(i, taskID(i, k), taskPort(i, k), events.TaskRunning)))
		}
	}
	return cs
}

func taskID(app, serial int) string { return fmt.Sprintf("bench_app%05d.%d", app, serial) }

// buildState applies changes to a new state, as a follower would.
func buildState(cs []events.Change) (*events.State, error) {
	s := events.NewState()
	now := time.Now().UTC()
	for _, c := range cs {
		if err := s.Apply(c.Stamp(s, 1, now)); err != nil {
			return nil, fmt.Errorf("build state: %w", err)
		}
	}
	return s, nil
}

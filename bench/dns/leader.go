package main

import (
	"fmt"

	"github.com/atollhq/atoll/bench/internal/leader"
	"github.com/atollhq/atoll/events"
)

// The synthetic cluster the DNS benchmark publishes through a
// bench/internal/leader.Leader.

const agentCount = 100

// agentIP spreads tasks over 100 agents on loopback addresses: records
// only, nothing ever connects to them.
func agentIP(i int) string { return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1) }

func appID(i int) string { return fmt.Sprintf("/bench/app%05d", i) }

// taskName is the Mesos-DNS task name of appID(i).
func taskName(i int) string { return fmt.Sprintf("app%05d.bench", i) }

// loadCluster commits agents, then apps with their running tasks, from
// app index `from` to `to` (exclusive).
func loadCluster(l *leader.Leader, from, to, tasksPerApp int) error {
	if from == 0 {
		for a := 0; a < agentCount; a++ {
			if err := l.Commit(events.PutAgent(events.Agent{
				ID: fmt.Sprintf("agent-%03d", a), Hostname: fmt.Sprintf("agent-%03d", a), IP: agentIP(a),
				State: events.AgentActive, Resources: events.Resources{Cpus: 64, Mem: 262144},
			})); err != nil {
				return err
			}
		}
	}
	for i := from; i < to; i++ {
		app := events.App{ID: appID(i), Cmd: "bench", Instances: tasksPerApp,
			PortDefinitions: []events.PortDefinition{{Port: 10000 + i%10000, Protocol: "tcp"}}}
		if err := l.Commit(events.PutApp(app)); err != nil {
			return err
		}
		for k := 0; k < tasksPerApp; k++ {
			if err := l.Commit(events.PutTask(benchTask(i, k, events.TaskRunning))); err != nil {
				return err
			}
		}
	}
	return nil
}

func benchTask(app, k int, state events.TaskState) events.Task {
	a := (app*3 + k) % agentCount
	return events.Task{
		ID: fmt.Sprintf("bench_app%05d.%d", app, k), AppID: appID(app), AgentID: fmt.Sprintf("agent-%03d", a),
		Host: fmt.Sprintf("agent-%03d", a), IPAddresses: []events.IPAddress{{IPAddress: agentIP(a), Protocol: "IPv4"}},
		Ports: []int{31000 + k}, State: state,
	}
}

package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// leader is a synthetic cluster leader: it commits events to its own state
// and publishes them on NATS exactly as the master does (same Publisher,
// same snapshot server, sync ticks), so the sidecar under test follows the
// real event path without 30,000 real processes behind it.
type leader struct {
	mu    sync.Mutex
	state *events.State
	pub   *events.Publisher
}

func newLeader(nc *nats.Conn) (*leader, error) {
	l := &leader{state: events.NewState(), pub: &events.Publisher{NC: nc}}
	if _, err := events.ServeSnapshots(nc, events.Subjects{}, func() (*events.State, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.state.Clone(), nil
	}); err != nil {
		return nil, err
	}
	if err := l.commit(events.PutLeader(events.Leader{ID: "bench", Hostname: "bench", IP: "127.0.0.1", Port: 8080, Epoch: 1})); err != nil {
		return nil, err
	}
	return l, nil
}

// commit stamps, applies and publishes one change; it returns when the
// event is on its way to NATS.
func (l *leader) commit(c events.Change) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := c.Stamp(l.state, 1, time.Now().UTC())
	if err := l.state.Apply(e); err != nil {
		return fmt.Errorf("bench leader: %w", err)
	}
	return l.pub.Publish(e)
}

// tick publishes sync ticks until stop is closed.
func (l *leader) tick(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			l.mu.Lock()
			_ = l.pub.PublishSync(l.state.Epoch, l.state.Seq, time.Now())
			l.mu.Unlock()
		}
	}
}

const agentCount = 100

// agentIP spreads tasks over 100 agents on loopback addresses: records
// only, nothing ever connects to them.
func agentIP(i int) string { return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1) }

func appID(i int) string { return fmt.Sprintf("/bench/app%05d", i) }

// taskName is the Mesos-DNS task name of appID(i).
func taskName(i int) string { return fmt.Sprintf("app%05d.bench", i) }

// loadCluster commits agents, then apps with their running tasks, from
// app index `from` to `to` (exclusive).
func (l *leader) loadCluster(from, to, tasksPerApp int) error {
	if from == 0 {
		for a := 0; a < agentCount; a++ {
			if err := l.commit(events.PutAgent(events.Agent{
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
		if err := l.commit(events.PutApp(app)); err != nil {
			return err
		}
		for k := 0; k < tasksPerApp; k++ {
			if err := l.commit(events.PutTask(benchTask(i, k, events.TaskRunning))); err != nil {
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

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// simAgent behaves like agent.Agent on the wire without running anything:
// it registers under its credential's name, heartbeats every second with
// its task reports, acks every launch at once and reports TASK_RUNNING,
// acks every kill and reports TASK_KILLING then TASK_KILLED. Status updates
// go one at a time, in order, each retried until acked (agent/status.go).
type simAgent struct {
	nc   *nats.Conn
	subj events.Subjects
	node string
	res  events.Resources
	c    *counters

	mu    sync.Mutex
	id    string
	tasks map[string]*simTask
	queue []events.StatusUpdate // status updates not yet acked, in order
	wake  chan struct{}         // capacity 1: something was queued
	reg   chan struct{}         // closed while registered
}

type simTask struct {
	appID string
	state events.TaskState
}

// counters are what the whole simulated fleet saw, for the report.
type counters struct {
	launches, launchDup, kills, killUnknown atomic.Int64
	registrations, reregisterAsks           atomic.Int64
	heartbeatFails, statusRetries           atomic.Int64
}

func newSimAgent(nc *nats.Conn, node string, res events.Resources, c *counters) *simAgent {
	return &simAgent{nc: nc, node: node, res: res, c: c,
		tasks: map[string]*simTask{}, wake: make(chan struct{}, 1), reg: make(chan struct{})}
}

// run serves launch and kill, then registers and heartbeats until ctx
// ends, registering again whenever the master asks.
func (a *simAgent) run(ctx context.Context) error {
	launch, err := a.nc.Subscribe(a.subj.Launch(a.node), a.handleLaunch)
	if err != nil {
		return fmt.Errorf("%s: subscribe launch: %w", a.node, err)
	}
	defer launch.Unsubscribe() //nolint:errcheck
	kill, err := a.nc.Subscribe(a.subj.Kill(a.node), a.handleKill)
	if err != nil {
		return fmt.Errorf("%s: subscribe kill: %w", a.node, err)
	}
	defer kill.Unsubscribe() //nolint:errcheck
	if err := a.nc.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("%s: flush: %w", a.node, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.statusLoop(ctx) }()
	defer wg.Wait()
	for {
		if !a.register(ctx) {
			return nil
		}
		a.heartbeat(ctx)
		if ctx.Err() != nil {
			return nil
		}
		a.mu.Lock()
		a.reg = make(chan struct{})
		a.mu.Unlock()
	}
}

func (a *simAgent) reports() []events.TaskReport {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]events.TaskReport, 0, len(a.tasks))
	for id, t := range a.tasks {
		out = append(out, events.TaskReport{TaskID: id, AppID: t.appID, State: t.state})
	}
	slices.SortFunc(out, func(x, y events.TaskReport) int { return strings.Compare(x.TaskID, y.TaskID) })
	return out
}

func (a *simAgent) register(ctx context.Context) bool {
	backoff := 100 * time.Millisecond
	for {
		a.mu.Lock()
		old := a.id
		a.mu.Unlock()
		req := events.RegisterRequest{AgentID: old, Hostname: a.node, IP: "127.0.0.1", Resources: a.res, Tasks: a.reports()}
		var reply events.RegisterReply
		err := a.request(ctx, a.subj.Register(a.node), req, &reply, 2*time.Second)
		if err == nil && reply.Error != "" {
			err = errors.New(reply.Error)
		}
		if err == nil && reply.AgentID != "" {
			a.c.registrations.Add(1)
			a.mu.Lock()
			a.id = reply.AgentID
			close(a.reg)
			a.mu.Unlock()
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// heartbeat returns when ctx ends or the master asks for a new
// registration.
func (a *simAgent) heartbeat(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.mu.Lock()
		id := a.id
		a.mu.Unlock()
		var reply events.HeartbeatReply
		if err := a.request(ctx, a.subj.Heartbeat(a.node), events.Heartbeat{AgentID: id, Tasks: a.reports()}, &reply, time.Second); err != nil {
			a.c.heartbeatFails.Add(1)
			continue
		}
		if reply.Reregister {
			a.c.reregisterAsks.Add(1)
			return
		}
	}
}

// request sends v and decodes the reply (if any) into out.
func (a *simAgent) request(ctx context.Context, subject string, v, out any, timeout time.Duration) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := a.nc.RequestWithContext(rctx, subject, data)
	if err != nil {
		return err
	}
	if len(msg.Data) == 0 {
		return nil
	}
	return json.Unmarshal(msg.Data, out)
}

func (a *simAgent) push(u events.StatusUpdate) {
	u.Time = time.Now().UTC()
	a.queue = append(a.queue, u)
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *simAgent) handleLaunch(m *nats.Msg) {
	var req events.LaunchRequest
	if err := json.Unmarshal(m.Data, &req); err != nil || req.Task.ID == "" {
		respond(m, events.Ack{Code: events.AckBadRequest, Error: fmt.Sprintf("bad launch request: %v", err)})
		return
	}
	a.c.launches.Add(1)
	a.mu.Lock()
	if _, ok := a.tasks[req.Task.ID]; ok {
		a.mu.Unlock()
		a.c.launchDup.Add(1)
		respond(m, events.Ack{Code: events.AckTaskExists, Error: "task " + req.Task.ID + " already exists"})
		return
	}
	a.tasks[req.Task.ID] = &simTask{appID: req.Task.AppID, state: events.TaskRunning}
	a.push(events.StatusUpdate{TaskID: req.Task.ID, State: events.TaskRunning})
	a.mu.Unlock()
	respond(m, events.Ack{})
}

func (a *simAgent) handleKill(m *nats.Msg) {
	var req events.KillRequest
	if err := json.Unmarshal(m.Data, &req); err != nil || req.TaskID == "" {
		respond(m, events.Ack{Code: events.AckBadRequest, Error: fmt.Sprintf("bad kill request: %v", err)})
		return
	}
	a.c.kills.Add(1)
	a.mu.Lock()
	t, ok := a.tasks[req.TaskID]
	if !ok {
		a.mu.Unlock()
		a.c.killUnknown.Add(1)
		respond(m, events.Ack{Code: events.AckUnknownTask, Error: "unknown task " + req.TaskID})
		return
	}
	if t.state == events.TaskRunning {
		// The process "exits" at once on SIGTERM: KILLING, then KILLED,
		// which stays in the reports until the master acks it.
		t.state = events.TaskKilled
		a.push(events.StatusUpdate{TaskID: req.TaskID, State: events.TaskKilling})
		a.push(events.StatusUpdate{TaskID: req.TaskID, State: events.TaskKilled})
	}
	a.mu.Unlock()
	respond(m, events.Ack{})
}

func respond(m *nats.Msg, ack events.Ack) {
	data, _ := json.Marshal(ack)
	_ = m.Respond(data)
}

// statusLoop sends queued updates in order, each retried with backoff
// until acked, while the agent is registered.
func (a *simAgent) statusLoop(ctx context.Context) {
	for {
		a.mu.Lock()
		var u events.StatusUpdate
		have := len(a.queue) > 0
		if have {
			u = a.queue[0]
		}
		a.mu.Unlock()
		if !have {
			select {
			case <-ctx.Done():
				return
			case <-a.wake:
				continue
			}
		}
		if !a.deliver(ctx, u) {
			return
		}
		a.mu.Lock()
		a.queue = a.queue[1:]
		if t, ok := a.tasks[u.TaskID]; ok && u.State == events.TaskKilled && t.state == events.TaskKilled {
			delete(a.tasks, u.TaskID)
		}
		a.mu.Unlock()
	}
}

func (a *simAgent) deliver(ctx context.Context, u events.StatusUpdate) bool {
	backoff := 100 * time.Millisecond
	for {
		a.mu.Lock()
		reg := a.reg
		a.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-reg:
		}
		a.mu.Lock()
		u.AgentID = a.id
		a.mu.Unlock()
		var ack events.Ack
		if a.request(ctx, a.subj.Status(a.node), u, &ack, 2*time.Second) == nil {
			return true // an Ack carrying an error is still an ack
		}
		if ctx.Err() != nil {
			return false
		}
		a.c.statusRetries.Add(1)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

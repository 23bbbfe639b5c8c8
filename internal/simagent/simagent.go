// Package simagent is a simulated atoll agent: it behaves like agent.Agent
// on the wire (DESIGN.md §2, §4) without running anything, so that a
// benchmark or a test can put hundreds of agents and tens of thousands of
// tasks in front of a real `atoll master`.
//
// Like the real agent, a simulated agent registers under its credential's
// node name with its task reports (again whenever a heartbeat reply asks
// it to), heartbeats every interval with its task reports, answers launch
// and kill requests (batches, events.LaunchBatch and events.KillBatch, and
// lone requests) with typed events.Ack codes per task (task_exists for a
// launch it already holds, unknown_task for a kill of a task it does not
// run, bad_request for what does not decode), and sends its queued status
// updates in order, all in one request (events.StatusBatch, up to 256;
// one at a time to a master that predates batches), each retried with
// backoff (100 ms to 2 s) until acked, held back while it is not
// registered; past 1,024 queued, only each task's newest update stays
// queued. A launch is acked once the task
// "runs": after Config.LaunchDelay, with TASK_STAGING in its reports
// meanwhile, then TASK_RUNNING queued before the ack. A kill is acked at
// once: TASK_KILLING, then TASK_KILLED (the process "exits" on SIGTERM),
// which stays in the reports until the master acks it. Tasks never end on
// their own.
//
// Differences from the real agent: it serves launch and kill from the
// start, as an agent that persisted its id from an earlier run does, and
// it sends no health results.
package simagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/google/uuid"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// Config configures one simulated agent.
type Config struct {
	NC       *nats.Conn // on this node's agent credential
	Subjects events.Subjects
	// Node is the hostname it registers as: its credential's name.
	Node       string
	IP         string // default 127.0.0.1
	Resources  events.Resources
	Attributes map[string]string
	// HeartbeatInterval defaults to 1s, as the real agent's.
	HeartbeatInterval time.Duration
	// LaunchDelay is how long a launch takes before it is acked (the
	// real agent acks once the process runs; 0: at once). Launches of
	// one agent are handled one at a time, as the real agent's are.
	LaunchDelay time.Duration
	// StatusDelay holds every status update this long before its first
	// send: an agent whose updates lag (0: none).
	StatusDelay time.Duration
	// NoStatus sends no status updates at all: the master learns of
	// tasks from heartbeat reports only. Killed tasks then leave the
	// reports once reported killed for a heartbeat.
	NoStatus bool
	// Counters, shared by a fleet, count what the agents saw; nil: a
	// counter of this agent's own.
	Counters *Counters
}

// Agent is one simulated agent. Create it with New and start it with Run.
type Agent struct {
	cfg Config
	c   *Counters

	mu    sync.Mutex
	id    string
	tasks map[string]*task
	// launches counts the tasks this agent took (the real agent's
	// LaunchMark): its reports and launch acks carry it.
	launches events.LaunchMark
	queue    []events.StatusUpdate // not yet acked, in order
	// sending is how many updates, from the head of queue, are on the
	// wire: compaction keeps them, so the master's acks still match.
	sending int
	// compactAt is the queue length that drops superseded updates, as
	// the real agent's bounded queue does (status.go).
	compactAt int
	wake      chan struct{} // capacity 1: something was queued
	reg       chan struct{} // closed while registered
}

type task struct {
	mark    events.LaunchMark // where this agent took it
	appID   string
	state   events.TaskState
	acked   bool // this agent acked its launch
	killing bool // a kill came while it was starting
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Agent, error) {
	if cfg.NC == nil {
		return nil, errors.New("simagent: no NATS connection")
	}
	if cfg.Node == "" {
		return nil, errors.New("simagent: no node name")
	}
	if cfg.LaunchDelay < 0 || cfg.StatusDelay < 0 || cfg.HeartbeatInterval < 0 {
		return nil, fmt.Errorf("simagent %s: negative delay or interval", cfg.Node)
	}
	if cfg.IP == "" {
		cfg.IP = "127.0.0.1"
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = time.Second
	}
	c := cfg.Counters
	if c == nil {
		c = &Counters{}
	}
	return &Agent{cfg: cfg, c: c, tasks: map[string]*task{}, wake: make(chan struct{}, 1), reg: make(chan struct{}),
		launches: events.LaunchMark{Run: uuid.NewString()}}, nil
}

// Node is the agent's hostname.
func (a *Agent) Node() string { return a.cfg.Node }

// ID is the id the master gave it ("" before the first registration).
func (a *Agent) ID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id
}

// Counters are the counters this agent adds to.
func (a *Agent) Counters() *Counters { return a.c }

// Tasks counts the agent's tasks by state.
func (a *Agent) Tasks() map[events.TaskState]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[events.TaskState]int{}
	for _, t := range a.tasks {
		out[t.state]++
	}
	return out
}

// Run serves launch and kill, registers and heartbeats until ctx ends,
// registering again whenever the master asks. It returns an error only
// if it cannot subscribe.
func (a *Agent) Run(ctx context.Context) error {
	launch, err := a.cfg.NC.Subscribe(a.cfg.Subjects.Launch(a.cfg.Node), a.handleLaunch)
	if err != nil {
		return fmt.Errorf("simagent %s: subscribe launch: %w", a.cfg.Node, err)
	}
	defer launch.Unsubscribe() //nolint:errcheck
	kill, err := a.cfg.NC.Subscribe(a.cfg.Subjects.Kill(a.cfg.Node), a.handleKill)
	if err != nil {
		return fmt.Errorf("simagent %s: subscribe kill: %w", a.cfg.Node, err)
	}
	defer kill.Unsubscribe() //nolint:errcheck
	// A busy master may send many launches at once: never drop one.
	for _, s := range []*nats.Subscription{launch, kill} {
		_ = s.SetPendingLimits(-1, -1)
	}
	if err := a.cfg.NC.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("simagent %s: flush: %w", a.cfg.Node, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Add(1)
	go func() { defer wg.Done(); a.statusLoop(sctx) }()
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

func (a *Agent) reports() ([]events.TaskReport, *events.LaunchMark) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]events.TaskReport, 0, len(a.tasks))
	for id, t := range a.tasks {
		out = append(out, events.TaskReport{TaskID: id, AppID: t.appID, State: t.state})
	}
	slices.SortFunc(out, func(x, y events.TaskReport) int { return strings.Compare(x.TaskID, y.TaskID) })
	mark := a.launches
	return out, &mark
}

// register retries with backoff until the master gives an id; false if
// ctx ended first.
func (a *Agent) register(ctx context.Context) bool {
	backoff := 100 * time.Millisecond
	for {
		tasks, mark := a.reports()
		req := events.RegisterRequest{AgentID: a.ID(), Hostname: a.cfg.Node, IP: a.cfg.IP,
			Resources: a.cfg.Resources, Attributes: a.cfg.Attributes, Tasks: tasks, Launches: mark}
		var reply events.RegisterReply
		err := a.request(ctx, a.cfg.Subjects.Register(a.cfg.Node), req, &reply, 2*time.Second)
		if err == nil && reply.Error != "" {
			a.c.RegisterRefused.Add(1)
			err = errors.New(reply.Error)
		}
		if err == nil && reply.AgentID != "" {
			a.c.Registrations.Add(1)
			a.mu.Lock()
			a.id = reply.AgentID
			close(a.reg)
			a.mu.Unlock()
			return true
		}
		a.c.RegisterFails.Add(1)
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
func (a *Agent) heartbeat(ctx context.Context) {
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	// As the real agent: a late heartbeat is worth less than the next.
	timeout := min(max(a.cfg.HeartbeatInterval, 250*time.Millisecond), 2*time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var reply events.HeartbeatReply
		a.c.Heartbeats.Add(1)
		tasks, mark := a.reports()
		if err := a.request(ctx, a.cfg.Subjects.Heartbeat(a.cfg.Node), events.Heartbeat{AgentID: a.ID(), Tasks: tasks, Launches: mark}, &reply, timeout); err != nil {
			if ctx.Err() == nil {
				a.c.HeartbeatFails.Add(1)
			}
			continue
		}
		if a.cfg.NoStatus {
			a.forgetReportedKilled()
		}
		if reply.Reregister {
			a.c.ReregisterAsks.Add(1)
			return
		}
	}
}

// forgetReportedKilled drops killed tasks once a heartbeat carried them
// (NoStatus only: no status ack will).
func (a *Agent) forgetReportedKilled() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, t := range a.tasks {
		if t.state == events.TaskKilled {
			delete(a.tasks, id)
		}
	}
}

// request sends v and decodes the reply (if any) into out.
func (a *Agent) request(ctx context.Context, subject string, v, out any, timeout time.Duration) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := a.cfg.NC.RequestWithContext(rctx, subject, data)
	if err != nil {
		return err
	}
	if len(msg.Data) == 0 {
		return nil
	}
	return json.Unmarshal(msg.Data, out)
}

// pushLocked queues a status update. a.mu held.
func (a *Agent) pushLocked(taskID string, state events.TaskState) {
	if a.cfg.NoStatus {
		return
	}
	a.queue = append(a.queue, events.StatusUpdate{TaskID: taskID, State: state, Time: time.Now().UTC()})
	a.compactLocked()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// handleLaunch answers a batch of launches (events.LaunchBatch) with an
// ack per task once each "runs", one at a time in order, as the real
// agent does; and a lone LaunchRequest with its ack.
func (a *Agent) handleLaunch(m *nats.Msg) {
	reqs, batch, err := events.DecodeLaunches(m.Data)
	if err != nil {
		respond(m, &events.CodedError{Code: events.AckBadRequest, Err: fmt.Errorf("bad launch request: %w", err)})
		return
	}
	acks := make([]events.TaskAck, len(reqs))
	for i, req := range reqs {
		mark, err := a.launch(req)
		acks[i] = events.TaskAck{TaskID: req.Task.ID, Ack: events.AckFor(err), Launch: mark}
	}
	answer(m, batch, acks)
}

func (a *Agent) launch(req events.LaunchRequest) (*events.LaunchMark, error) {
	id := req.Task.ID
	if id == "" {
		return nil, &events.CodedError{Code: events.AckBadRequest, Err: errors.New("launch request without task id")}
	}
	a.c.Launches.Add(1)
	a.mu.Lock()
	if _, ok := a.tasks[id]; ok {
		a.mu.Unlock()
		a.c.LaunchDup.Add(1)
		return nil, &events.CodedError{Code: events.AckTaskExists, Err: fmt.Errorf("task %s already exists", id)}
	}
	a.launches.N++
	t := &task{appID: req.Task.AppID, state: events.TaskStaging, mark: a.launches}
	a.tasks[id] = t
	a.mu.Unlock()
	if a.cfg.LaunchDelay > 0 {
		time.Sleep(a.cfg.LaunchDelay) // the process starting
	}
	a.mu.Lock()
	t.state, t.acked = events.TaskRunning, true
	a.pushLocked(id, events.TaskRunning)
	if t.killing { // a kill came while it was starting: SIGTERM now
		t.state = events.TaskKilled
		a.pushLocked(id, events.TaskKilled)
	}
	mark := t.mark
	a.mu.Unlock()
	a.c.LaunchAcks.Add(1)
	return &mark, nil
}

// handleKill answers a batch of kills (events.KillBatch) with an ack per
// task, and a lone KillRequest with its ack, at once.
func (a *Agent) handleKill(m *nats.Msg) {
	reqs, batch, err := events.DecodeKills(m.Data)
	if err != nil {
		respond(m, &events.CodedError{Code: events.AckBadRequest, Err: fmt.Errorf("bad kill request: %w", err)})
		return
	}
	acks := make([]events.TaskAck, len(reqs))
	for i, req := range reqs {
		acks[i] = events.TaskAck{TaskID: req.TaskID, Ack: events.AckFor(a.kill(req))}
	}
	answer(m, batch, acks)
}

func (a *Agent) kill(req events.KillRequest) error {
	a.c.Kills.Add(1)
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.tasks[req.TaskID]
	if !ok {
		a.c.KillUnknown.Add(1)
		return &events.CodedError{Code: events.AckUnknownTask, Err: fmt.Errorf("unknown task %s", req.TaskID)}
	}
	if t.acked && t.state == events.TaskRunning {
		a.c.KillsOfAcked.Add(1)
	}
	switch {
	case t.state == events.TaskStaging && !t.killing:
		t.killing = true
		a.pushLocked(req.TaskID, events.TaskKilling)
	case t.state == events.TaskRunning:
		// The process "exits" at once on SIGTERM.
		t.state = events.TaskKilled
		a.pushLocked(req.TaskID, events.TaskKilling)
		a.pushLocked(req.TaskID, events.TaskKilled)
	}
	return nil
}

// answer replies to a batch with its acks, and to a lone request with its
// one ack.
func answer(m *nats.Msg, batch bool, acks []events.TaskAck) {
	var data []byte
	if batch {
		data, _ = json.Marshal(events.AckBatch{Acks: acks})
	} else {
		data, _ = json.Marshal(acks[0].Ack)
	}
	_ = m.Respond(data)
}

func respond(m *nats.Msg, err error) {
	data, _ := json.Marshal(events.AckFor(err))
	_ = m.Respond(data)
}

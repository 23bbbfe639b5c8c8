package master

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// defaultMaxPayload is NATS's default limit on a message (1 MB).
const defaultMaxPayload = 1 << 20

// Request kinds, for atoll_master_agent_requests_total.
const (
	requestLaunch = "launch"
	requestKill   = "kill"
)

// releaseLaunchLocked has req sent to node's agent once everything staged
// so far is durable.
func (m *Master) releaseLaunchLocked(node string, req events.LaunchRequest) {
	m.pipe.mu.Lock()
	m.pipe.open.out.launch(node, req)
	m.pipe.mu.Unlock()
	m.kickCommit()
}

// releaseKillLocked has req sent to node's agent once everything staged so
// far is durable, and wait after that.
func (m *Master) releaseKillLocked(node string, req events.KillRequest, wait time.Duration) {
	m.pipe.mu.Lock()
	m.pipe.open.out.kill(node, req, wait)
	m.pipe.mu.Unlock()
	m.kickCommit()
}

// agentRequests turns a durable batch's outbox into its requests: per
// agent, its launches (in batches of at most maxLaunchesPerRequest and
// one NATS message), its kills, and its drained kills once they drained.
func (m *Master) agentRequests(o *outbox) []func(context.Context) {
	maxBytes := int(m.cfg.NC.MaxPayload())
	if maxBytes <= 0 {
		maxBytes = defaultMaxPayload // not connected: the server's default
	}
	var sends []func(context.Context)
	for _, token := range o.nodes {
		ao := o.byNode[token]
		node := ao.node
		launches, err := encodeBatches("launches", ao.launches, maxLaunchesPerRequest, maxBytes)
		if err != nil {
			// Resent after launchResend, or failed once staging times out.
			m.log.Error("launches not sent", "node", node, "tasks", len(ao.launches), "err", err)
		}
		for _, b := range launches {
			sends = append(sends, func(ctx context.Context) { m.sendLaunches(ctx, node, b) })
		}
		for _, k := range []struct {
			reqs []events.KillRequest
			wait time.Duration
		}{{ao.kills, 0}, {ao.drained, ao.drainWait}} {
			batches, err := encodeBatches("kills", k.reqs, maxKillsPerRequest, maxBytes)
			if err != nil {
				m.log.Error("kills not sent", "node", node, "tasks", len(k.reqs), "err", err)
			}
			wait := k.wait
			for _, b := range batches {
				sends = append(sends, func(ctx context.Context) {
					if !sleepCtx(ctx, wait) {
						return
					}
					m.sendKills(ctx, node, b)
				})
			}
		}
	}
	return sends
}

// sleepCtx waits d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// errNotBatched is an agent's answer to a batch that has no ack per task:
// an agent that predates batches (it found no task id in the batch and
// did nothing).
var errNotBatched = errors.New("the agent does not take batched requests")

// requestBatch sends one batch to subject and returns the agents' acks by
// task id.
func (m *Master) requestBatch(ctx context.Context, kind, subject string, body []byte, n int) (map[string]events.TaskAck, error) {
	m.metrics.agentRequests.WithLabelValues(kind).Inc()
	rctx, cancel := context.WithTimeout(ctx, requestTimeout+time.Duration(n)*perTaskAllowance)
	defer cancel()
	msg, err := m.cfg.NC.RequestWithContext(rctx, subject, body)
	if err != nil {
		return nil, err
	}
	var reply events.AckBatch
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return nil, &badReplyError{err}
	}
	if reply.Acks == nil {
		return nil, errNotBatched
	}
	acks := make(map[string]events.TaskAck, len(reply.Acks))
	for _, a := range reply.Acks {
		acks[a.TaskID] = a
	}
	return acks, nil
}

// requestOne sends one lone request (to an agent that predates batches).
func (m *Master) requestOne(ctx context.Context, kind, subject string, v any) (events.Ack, error) {
	m.metrics.agentRequests.WithLabelValues(kind).Inc()
	data, err := json.Marshal(v)
	if err != nil {
		return events.Ack{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	msg, err := m.cfg.NC.RequestWithContext(rctx, subject, data)
	if err != nil {
		return events.Ack{}, err
	}
	var ack events.Ack
	if err := json.Unmarshal(msg.Data, &ack); err != nil {
		return events.Ack{}, &badReplyError{err}
	}
	return ack, nil
}

// badReplyError is a reply that did not decode.
type badReplyError struct{ err error }

func (e *badReplyError) Error() string { return "bad reply: " + e.err.Error() }
func (e *badReplyError) Unwrap() error { return e.err }

// sendLaunches asks node's agent to start the tasks of one batch. A
// refusal fails its task alone; a task the agent already has counts as
// acked (a resent launch).
func (m *Master) sendLaunches(ctx context.Context, node string, b batchBody[events.LaunchRequest]) {
	acks, err := m.requestBatch(ctx, requestLaunch, m.cfg.Subjects.Launch(node), b.body, len(b.items))
	var bad *badReplyError
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		// The agent has registered but not yet subscribed (its first
		// registration reply is still on its way): try again at the
		// next reconcile pass rather than after launchResend.
		m.mu.Lock()
		for _, req := range b.items {
			delete(m.runtime.launchSent, req.Task.ID)
		}
		m.mu.Unlock()
		m.kickReconcile()
		m.log.Debug("launch: agent not listening yet", "node", node, "tasks", len(b.items))
		return
	case errors.Is(err, errNotBatched):
		m.log.Info("agent predates batched launches; sending them one at a time", "node", node, "tasks", len(b.items))
		acks = map[string]events.TaskAck{}
		for _, req := range b.items {
			ack, err := m.requestOne(ctx, requestLaunch, m.cfg.Subjects.Launch(node), req)
			if err != nil {
				m.log.Warn("launch not answered", "task", req.Task.ID, "node", node, "err", err)
				continue
			}
			acks[req.Task.ID] = events.TaskAck{TaskID: req.Task.ID, Ack: ack}
		}
	case errors.As(err, &bad):
		acks = map[string]events.TaskAck{}
		for _, req := range b.items {
			acks[req.Task.ID] = events.TaskAck{TaskID: req.Task.ID, Ack: events.Ack{Code: events.AckRefused, Error: bad.Error()}}
		}
	case err != nil:
		// Resent later, or lost once staging times out.
		m.log.Warn("launches not answered", "node", node, "tasks", len(b.items), "err", err)
		return
	}
	m.launchesAnswered(node, b.items, acks)
}

// launchesAnswered records the acks of launches and fails the tasks whose
// launch the agent refused. A launch without an answer is resent later.
func (m *Master) launchesAnswered(node string, reqs []events.LaunchRequest, acks map[string]events.TaskAck) {
	now := m.cfg.Now()
	var refused []events.LaunchRequest
	for _, req := range reqs {
		ack, ok := acks[req.Task.ID]
		switch {
		case !ok:
			m.log.Warn("launch not answered in the agent's reply", "task", req.Task.ID, "node", node)
		case ack.Error == "" || ack.Code == events.AckTaskExists:
			m.live.launchAcked(req.Task.ID, now, ack.Launch)
		default:
			m.log.Warn("launch refused", "task", req.Task.ID, "agent", req.Task.AgentID, "err", ack.Error)
			refused = append(refused, req)
		}
	}
	if len(refused) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, req := range refused {
		t, ok := m.state.Tasks[req.Task.ID]
		if !ok || t.State != events.TaskStaging {
			continue
		}
		changes := m.taskStatusLocked(t, events.TaskFailed, "launch refused: "+acks[req.Task.ID].Error, nil, m.cfg.Now())
		if err := m.commitLocked(changes...); err != nil {
			m.log.Warn("fail refused task", "task", t.ID, "err", err)
		}
	}
}

// sendKills asks node's agent to kill the tasks of one batch. A task the
// agent does not know has nothing to kill: it is over.
func (m *Master) sendKills(ctx context.Context, node string, b batchBody[events.KillRequest]) {
	acks, err := m.requestBatch(ctx, requestKill, m.cfg.Subjects.Kill(node), b.body, len(b.items))
	if errors.Is(err, errNotBatched) {
		m.log.Info("agent predates batched kills; sending them one at a time", "node", node, "tasks", len(b.items))
		acks, err = map[string]events.TaskAck{}, nil
		for _, req := range b.items {
			ack, err := m.requestOne(ctx, requestKill, m.cfg.Subjects.Kill(node), req)
			if err != nil {
				m.log.Warn("kill not answered", "task", req.TaskID, "node", node, "err", err)
				continue
			}
			acks[req.TaskID] = events.TaskAck{TaskID: req.TaskID, Ack: ack}
		}
	}
	if err != nil {
		// Resent after killResend.
		m.log.Warn("kills not answered", "node", node, "tasks", len(b.items), "err", err)
		return
	}
	var over []string
	for _, req := range b.items {
		if acks[req.TaskID].Code == events.AckUnknownTask {
			over = append(over, req.TaskID)
		}
	}
	if len(over) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range over {
		t, ok := m.state.Tasks[id]
		if !ok || t.State != events.TaskKilling {
			continue
		}
		changes := m.taskStatusLocked(t, events.TaskKilled, "agent no longer runs the task", nil, m.cfg.Now())
		if err := m.commitLocked(changes...); err != nil {
			m.log.Warn("end killed task", "task", id, "err", err)
		}
	}
}

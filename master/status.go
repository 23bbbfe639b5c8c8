package master

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// handleStatus applies an agent's task status updates, a lone
// StatusUpdate or a StatusBatch, and acks them once they are stored; the
// agent retries until then.
func (m *Master) handleStatus(msg *nats.Msg) {
	node, ok := m.senderNode(msg)
	if !ok {
		m.metrics.statusRecv.Inc()
		return
	}
	ups, batch, err := events.DecodeStatuses(msg.Data)
	if err != nil {
		m.metrics.statusRecv.Inc()
		m.refuse(refusedUndecodable, "node", node, "err", err)
		m.respond(msg, events.Ack{Code: events.AckBadRequest, Error: "bad status update: " + err.Error()})
		return
	}
	m.metrics.statusRecv.Add(float64(len(ups)))
	// The ack goes from the committer once the update is durable: were
	// this handler to wait for that, every agent's update would wait
	// behind the one before it, each for a store write of its own (all
	// agents' updates come through this one subscription), and a
	// cluster's launches would run at one per fsync.
	// Not leading: no ack is queued; the agent retries with the next leader.
	if batch {
		m.recordStatuses(node, ups, func(acks []events.TaskAck) { m.respond(msg, events.AckBatch{Acks: acks}) })
		return
	}
	up := ups[0]
	_, err = m.recordStatus(node, up, func() { m.respond(msg, events.Ack{}) })
	switch {
	case errors.Is(err, errRefused):
		m.respond(msg, events.Ack{Code: events.AckRefused, Error: err.Error()})
	case err != nil:
		m.log.Warn("status update not stored", "task", up.TaskID, "state", up.State, "err", err) // no ack: retried
	}
}

// recordStatus commits what the status update of node's agent changes and
// runs ack once that, and everything staged before it, is durable (never,
// if the store fails: the agent retries). It reports false when this
// master does not lead (the update must not be acked). An update about
// another node's agent or task is refused (errNotYours).
func (m *Master) recordStatus(node string, up events.StatusUpdate, ack func()) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.actingLocked() {
		return false, nil
	}
	if err := m.applyStatusLocked(node, up); err != nil {
		return true, err
	}
	m.ackWhenDurableLocked(ack)
	return true, nil
}

// recordStatuses is recordStatus for a batch of node's updates, in order,
// under one hold of the lock, so that they join one store write: ack gets
// one answer per update once they are durable. A refused update is
// answered with its refusal and does not hold up the others. An update
// that cannot be staged ends the batch there: it and those after it get
// no answer (the agent sends them again, in order, so a task's statuses
// never overtake each other). Not leading: nothing is answered.
func (m *Master) recordStatuses(node string, ups []events.StatusUpdate, ack func([]events.TaskAck)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.actingLocked() {
		return
	}
	acks := make([]events.TaskAck, 0, len(ups))
	for _, up := range ups {
		err := m.applyStatusLocked(node, up)
		if err != nil && !errors.Is(err, errRefused) {
			m.log.Warn("status update not stored; it and the rest of its batch are left to be sent again",
				"task", up.TaskID, "state", up.State, "unanswered", len(ups)-len(acks), "err", err)
			break
		}
		acks = append(acks, events.TaskAck{TaskID: up.TaskID, Ack: events.AckFor(err)})
	}
	m.ackWhenDurableLocked(func() { ack(acks) })
}

// errNotAgentState refuses a status update whose state no agent reports:
// unknown, or one only the master decides (staging, unreachable, gone).
var errNotAgentState = fmt.Errorf("%w: is not a state an agent reports", errRefused)

// applyStatusLocked checks the status update of node's agent and commits
// what it changes. An update for a task the state no longer holds records
// nothing: the agent's next heartbeat gets the task killed if it still
// runs. An update about another node's agent or task is refused
// (errNotYours). m.mu held, and this master acting.
func (m *Master) applyStatusLocked(node string, up events.StatusUpdate) error {
	if !up.State.ReportedByAgents() {
		m.refuse(refusedBadState, "node", node, "task", up.TaskID, "state", up.State)
		return fmt.Errorf("status for task %s: %q %w", up.TaskID, up.State, errNotAgentState)
	}
	if a, ok := m.state.Agents[up.AgentID]; ok && events.NodeToken(a.Hostname) != node {
		m.refuse(refusedOtherAgent, "node", node, "agent", up.AgentID, "owner", a.Hostname)
		return fmt.Errorf("status for agent %s: %w", up.AgentID, errNotYours)
	}
	t, ok := m.state.Tasks[up.TaskID]
	if ok && !m.agentIsNodeLocked(t.AgentID, node) {
		m.refuse(refusedOtherTask, "node", node, "task", up.TaskID, "agent", t.AgentID)
		return fmt.Errorf("status for task %s: %w", up.TaskID, errNotYours)
	}
	if !ok || t.AgentID != up.AgentID {
		return nil
	}
	now := m.cfg.Now()
	changes := m.taskStatusLocked(t, up.State, up.Message, up.Healthy, now)
	if len(up.HealthCheckResults) > 0 {
		changes = m.healthResultsLocked(t, up, changes, now)
	}
	if up.Ready != nil {
		changes = readinessLocked(t, *up.Ready, changes)
	}
	changes = taskAddressesLocked(t, up.IPAddresses, changes) // task_addresses.go
	if err := m.commitLocked(changes...); err != nil {
		return err
	}
	if len(changes) > 0 {
		m.kickReconcile()
	}
	return nil
}

// taskStatusLocked turns a reported task state into the changes to commit,
// and keeps the launch backoff: a task that ends without being asked to is
// a failure of its app.
func (m *Master) taskStatusLocked(t events.Task, state events.TaskState, message string, healthy *bool, now time.Time) []events.Change {
	if t.State.Terminal() {
		return nil
	}
	// A kill in progress is not undone by a late "running" report.
	if t.State == events.TaskKilling && !state.Terminal() {
		return nil
	}
	if state == t.State && message == t.Message && (healthy == nil || sameHealth(healthy, t.Healthy)) {
		return nil
	}
	wasKilling := t.State == events.TaskKilling
	before := t
	t.State, t.Message = state, message
	if healthy != nil {
		h := *healthy
		t.Healthy = &h
	}
	if state == events.TaskRunning && t.StartedAt == nil {
		at := now.UTC()
		t.StartedAt = &at
	}
	app, hasApp := m.state.Apps[t.AppID]
	if hasApp && current(app, t) && ready(app, t) && !ready(app, before) {
		m.runtime.deployFailures[app.ID] = 0 // the new config can run
	}
	if state.Terminal() {
		m.runtime.forgetTask(t.ID)
		if hasApp && !wasKilling && state != events.TaskKilled {
			if current(app, t) {
				m.runtime.deployFailures[app.ID]++
			}
			until := m.runtime.failed(app, now)
			m.metrics.failures.Inc()
			m.log.Info("task failed", "task", t.ID, "state", state, "message", message, "next launch", until.Sub(now).Round(time.Millisecond))
		}
	}
	return []events.Change{events.PutTask(t)}
}

func sameHealth(a, b *bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

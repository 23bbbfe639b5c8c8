package master

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// handleStatus applies an agent's task status update and acks it once it
// is stored; the agent retries until then.
func (m *Master) handleStatus(msg *nats.Msg) {
	m.metrics.statusRecv.Inc()
	var up events.StatusUpdate
	if err := json.Unmarshal(msg.Data, &up); err != nil {
		respond(msg, events.Ack{Error: "bad status update: " + err.Error()})
		return
	}
	m.mu.Lock()
	if !m.leading {
		m.mu.Unlock()
		return // no ack: the agent retries with the next leader
	}
	t, ok := m.state.Tasks[up.TaskID]
	if !ok || t.AgentID != up.AgentID {
		m.mu.Unlock()
		// A task the state no longer holds: nothing to record. The
		// agent's next heartbeat gets it killed if it still runs.
		respond(msg, events.Ack{})
		return
	}
	changes := m.taskStatusLocked(t, up.State, up.Message, up.Healthy, m.cfg.Now())
	err := m.commitLocked(changes...)
	m.mu.Unlock()
	if err != nil {
		m.log.Warn("status update not stored", "task", up.TaskID, "state", up.State, "err", err)
		return // no ack: retried
	}
	if len(changes) > 0 {
		m.kickReconcile()
	}
	respond(msg, events.Ack{})
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
	t.State, t.Message = state, message
	if healthy != nil {
		h := *healthy
		t.Healthy = &h
	}
	if state == events.TaskRunning && t.StartedAt == nil {
		at := now.UTC()
		t.StartedAt = &at
	}
	if state.Terminal() {
		m.runtime.forgetTask(t.ID)
		if app, ok := m.state.Apps[t.AppID]; ok && !wasKilling && state != events.TaskKilled {
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

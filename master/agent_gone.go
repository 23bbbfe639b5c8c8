package master

import (
	"errors"
	"fmt"

	"github.com/atollhq/atoll/events"
)

// errAgentNotFound is a gone-marking for an id the state does not hold.
var errAgentNotFound = errors.New("agent not found")

// markAgentGone records that an agent will not come back (Mesos's
// MARK_AGENT_GONE: the machine is decommissioned, or its disk wiped):
// its tasks become TASK_GONE and are replaced elsewhere at once, without
// waiting for a timeout. If the agent process does come back, it is told
// to register afresh: it gets a new id, and the master kills the tasks it
// still runs, which nothing owns any more.
func (m *Master) markAgentGone(id string) (err error) {
	defer m.writeLocked()(&err)
	a, ok := m.state.Agents[id]
	if !ok {
		return fmt.Errorf("mark agent %s gone: %w", id, errAgentNotFound)
	}
	if a.State == events.AgentGone {
		return nil
	}
	a.State = events.AgentGone
	changes := []events.Change{events.PutAgent(a)}
	for _, t := range m.state.TasksOn(id) {
		t.State = events.TaskGone
		t.Message = "agent " + a.Hostname + " marked gone"
		changes = append(changes, events.PutTask(t))
	}
	if err := m.commitLocked(changes...); err != nil {
		return fmt.Errorf("mark agent %s gone: %w", id, err)
	}
	m.live.forget(id)
	m.log.Warn("agent marked gone", "id", id, "hostname", a.Hostname, "tasks", len(changes)-1)
	m.kickReconcile()
	return nil
}

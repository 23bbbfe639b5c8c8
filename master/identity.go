package master

import (
	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// What an agent says is about itself only: the NATS server lets an agent's
// credential publish only under its own node name (DESIGN.md §10), so the
// master takes the agent's identity from the subject, never from the body,
// and refuses, logs and counts anything a node says about another.

// Reasons a message is refused (the refused metric's label).
const (
	refusedBadSubject   = "bad_subject"
	refusedHostname     = "hostname_not_credential"
	refusedOtherAgent   = "other_agents_id"
	refusedOtherTask    = "other_agents_task"
	refusedBadState     = "not_an_agent_state"
	refusedReplySubject = "reply_not_inbox"
	refusedUndecodable  = "undecodable"
)

// senderNode is the node token NATS let msg's publisher use, ok false
// (refused and counted) for a subject the subscription should not have
// matched.
func (m *Master) senderNode(msg *nats.Msg) (string, bool) {
	node, ok := m.cfg.Subjects.AgentOf(msg.Subject)
	if !ok {
		m.refuse(refusedBadSubject, "subject", msg.Subject)
		return "", false
	}
	return node, true
}

// agentIsNodeLocked reports whether the agent id, known to the state,
// is node's (its hostname is the node's name).
func (m *Master) agentIsNodeLocked(id, node string) bool {
	a, ok := m.state.Agents[id]
	return ok && events.NodeToken(a.Hostname) == node
}

// refuse logs and counts a refused message.
func (m *Master) refuse(reason string, kv ...any) {
	m.metrics.refused.WithLabelValues(reason).Inc()
	m.log.Warn("refused a message its sender may not send", append([]any{"reason", reason}, kv...)...)
}

// agentNodeLocked is the node name launch and kill go to for an agent id.
func (m *Master) agentNodeLocked(id string) string {
	if a, ok := m.state.Agents[id]; ok {
		return a.Hostname
	}
	return id
}

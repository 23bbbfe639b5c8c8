package master

import "github.com/atollhq/atoll/events"

// agentUpdateEvent is atoll's own event type (Marathon has no agents):
// an agent registered, became unreachable, was marked gone or removed,
// so that live views (the web UI's cluster page, `atoll top`) follow the
// agents without polling. Heartbeats are not events; last_heartbeat in
// /master/state is read when a view refetches.
type agentUpdateEvent struct {
	AgentID    string            `json:"agentId"`
	Hostname   string            `json:"hostname,omitempty"`
	IP         string            `json:"ip,omitempty"`
	State      string            `json:"state"` // active, unreachable, gone, removed
	Attributes map[string]string `json:"attributes,omitempty"`
	EventType  string            `json:"eventType"`
	Timestamp  jsonTime          `json:"timestamp"`
}

func agentFrames(e events.Event, id string, ts jsonTime) []sseFrame {
	ev := agentUpdateEvent{AgentID: e.ID, State: "removed", EventType: "agent_update_event", Timestamp: ts}
	if a := e.Agent; a != nil {
		ev.Hostname, ev.IP, ev.State, ev.Attributes = a.Hostname, a.IP, string(a.State), a.Attributes
	}
	return []sseFrame{frame(id, "agent_update_event", ev)}
}

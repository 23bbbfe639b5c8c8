package events

// Subjects names the NATS subjects under one prefix (default "atoll"), as
// listed in DESIGN.md §2.
type Subjects struct{ Prefix string }

// DefaultPrefix is the subject prefix used when none is configured.
const DefaultPrefix = "atoll"

func (s Subjects) p() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

// Event is the subject an event of type t is published on.
func (s Subjects) Event(t Type) string { return s.p() + ".events." + string(t) }

// AllEvents matches every event subject, sync ticks included.
func (s Subjects) AllEvents() string { return s.p() + ".events.>" }

// Snapshot is the request/reply subject for a full state snapshot.
func (s Subjects) Snapshot() string { return s.p() + ".state.snapshot" }

// Register is the request/reply subject agents register on.
func (s Subjects) Register() string { return s.p() + ".master.register" }

// Heartbeat is the subject agents heartbeat on.
func (s Subjects) Heartbeat() string { return s.p() + ".master.heartbeat" }

// Status is the request/reply subject for task status updates.
func (s Subjects) Status() string { return s.p() + ".master.status" }

// Launch is the request/reply subject that starts a task on an agent.
func (s Subjects) Launch(agentID string) string { return s.p() + ".agent." + agentID + ".launch" }

// Kill is the request/reply subject that kills a task on an agent.
func (s Subjects) Kill(agentID string) string { return s.p() + ".agent." + agentID + ".kill" }

// LBReport is the subject load-balancer sidecars publish problems on (an app
// left out of HAProxy's config, a template set refused); the master relays
// them to /v2/events.
func (s Subjects) LBReport() string { return s.p() + ".lb.report" }

package events

import (
	"fmt"
	"strings"
)

// Subjects names the NATS subjects under one prefix (default "atoll"), as
// listed in DESIGN.md §2 and §10. Whatever one node may say or hear carries
// that node's name as a subject token, so that the NATS server itself can
// hold each credential to its own subjects: an agent publishes only under
// MasterAgent(its node) and hears only Agent(its node).
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

// Agent verbs: what an agent says to the leader, and what the leader says
// to an agent.
const (
	VerbRegister  = "register"
	VerbHeartbeat = "heartbeat"
	VerbStatus    = "status"
	VerbLaunch    = "launch"
	VerbKill      = "kill"
	// VerbFiles reads a file of a task's sandbox (its stdout, stderr):
	// the leader asks, for the API's logs, as Mesos's /files/read.
	VerbFiles = "files"
)

// Register is the request/reply subject the agent on node registers on.
func (s Subjects) Register(node string) string { return s.toMaster(node, VerbRegister) }

// Heartbeat is the request/reply subject the agent on node heartbeats on.
func (s Subjects) Heartbeat(node string) string { return s.toMaster(node, VerbHeartbeat) }

// Status is the request/reply subject for the task status updates of the
// agent on node.
func (s Subjects) Status(node string) string { return s.toMaster(node, VerbStatus) }

func (s Subjects) toMaster(node, verb string) string {
	return s.p() + ".master.agent." + NodeToken(node) + "." + verb
}

// FromAgents matches verb from every agent (the leader subscribes to it).
func (s Subjects) FromAgents(verb string) string { return s.p() + ".master.agent.*." + verb }

// AgentOf is the node token of a subject that FromAgents matched: the
// identity the NATS server allowed to publish it. ok is false for any
// other subject.
func (s Subjects) AgentOf(subject string) (token string, ok bool) {
	rest, ok := strings.CutPrefix(subject, s.p()+".master.agent.")
	if !ok {
		return "", false
	}
	token, verb, ok := strings.Cut(rest, ".")
	if !ok || token == "" || strings.Contains(verb, ".") {
		return "", false
	}
	return token, true
}

// ToMasterFrom matches everything the agent on node may send the leader.
func (s Subjects) ToMasterFrom(node string) string {
	return s.p() + ".master.agent." + NodeToken(node) + ".>"
}

// Launch is the request/reply subject that starts a task on node's agent.
func (s Subjects) Launch(node string) string { return s.toAgent(node, VerbLaunch) }

// Kill is the request/reply subject that kills a task on node's agent.
func (s Subjects) Kill(node string) string { return s.toAgent(node, VerbKill) }

// Files is the request/reply subject that reads a sandbox file on node's
// agent (FileReadRequest).
func (s Subjects) Files(node string) string { return s.toAgent(node, VerbFiles) }

func (s Subjects) toAgent(node, verb string) string {
	return s.p() + ".agent." + NodeToken(node) + "." + verb
}

// ToAgent matches everything the leader may tell node's agent; with node
// "*", every agent's launch or kill of that verb.
func (s Subjects) ToAgent(node string) string { return s.p() + ".agent." + NodeToken(node) + ".>" }

// ToAgents matches verb to every agent (what the leader publishes).
func (s Subjects) ToAgents(verb string) string { return s.p() + ".agent.*." + verb }

// LBReport is the subject the load-balancer sidecar on node publishes
// problems on (an app left out of HAProxy's config, a template set
// refused); the master relays them to /v2/events.
func (s Subjects) LBReport(node string) string { return s.p() + ".lb.report." + NodeToken(node) }

// LBReports matches every node's LB reports.
func (s Subjects) LBReports() string { return s.p() + ".lb.report.*" }

// LBReportNode is the node token of a subject LBReports matched.
func (s Subjects) LBReportNode(subject string) (string, bool) {
	token, ok := strings.CutPrefix(subject, s.p()+".lb.report.")
	if !ok || token == "" || strings.Contains(token, ".") {
		return "", false
	}
	return token, true
}

// ReplyPrefix is what every reply inbox starts with. Replies go only to
// inboxes: a request whose reply subject is anything else is not answered
// (it would make the answering master publish where the requester may not).
const ReplyPrefix = "_INBOX."

// IsInbox reports whether a reply subject is an inbox.
func IsInbox(reply string) bool {
	return strings.HasPrefix(reply, ReplyPrefix) && len(reply) > len(ReplyPrefix)
}

// NodeToken is the subject token for a node name (a hostname): lower case,
// dots made underscores (hostnames have no underscores, so two names never
// share a token). "*" stays a wildcard.
func NodeToken(node string) string {
	if node == "*" {
		return node
	}
	return strings.ReplaceAll(strings.ToLower(node), ".", "_")
}

// ValidNodeName checks that name can be a node's identity: a hostname
// (RFC 1123 labels of letters, digits and '-', dot separated, at most 253
// characters).
func ValidNodeName(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("node name %q: must be 1 to 253 characters", name)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("node name %q: label %q is not a hostname label", name, label)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("node name %q: %q is not allowed in a hostname", name, c)
			}
		}
	}
	return nil
}

package natsauth

import (
	"fmt"

	"github.com/nats-io/jwt/v2"

	"github.com/atollhq/atoll/events"
)

// Role is what a credential is for (DESIGN.md §10).
type Role string

// The roles, and what NATS lets each do (Permissions).
const (
	// RoleMaster publishes events and sync ticks and sends launch and kill
	// to every agent; it hears every agent's register, heartbeat and
	// status, snapshot requests and LB reports.
	RoleMaster Role = "master"
	// RoleAgent speaks only under its own node name: its register,
	// heartbeat and status subjects, and its own launch and kill.
	RoleAgent Role = "agent"
	// RoleSidecar (DNS, LB) reads events, asks for snapshots and publishes
	// its own node's LB reports.
	RoleSidecar Role = "sidecar"
	// RoleObserver (atoll events, atoll top) reads events and asks for
	// snapshots.
	RoleObserver Role = "observer"
)

// Roles lists every role.
var Roles = []Role{RoleMaster, RoleAgent, RoleSidecar, RoleObserver}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q (want master, agent, sidecar or observer)", s)
}

// InboxPrefix is where a credential's replies arrive: its own, so nobody
// reads another's replies (the server lets each subscribe only there).
func InboxPrefix(role Role, name string) string {
	return events.ReplyPrefix + string(role) + "." + events.NodeToken(name)
}

// Permissions are the subjects NATS lets a credential of role and name
// publish and subscribe to, under subj's prefix. Replies to requests a
// credential received are allowed by the response permission (NATS's
// allow_responses), one reply per request, and nothing else.
func Permissions(subj events.Subjects, role Role, name string) jwt.Permissions {
	inbox := InboxPrefix(role, name) + ".>"
	var p jwt.Permissions
	switch role {
	case RoleMaster:
		p.Pub.Allow.Add(subj.Event("*"), subj.ToAgents(events.VerbLaunch), subj.ToAgents(events.VerbKill), subj.ToAgents(events.VerbFiles), subj.Snapshot())
		p.Sub.Allow.Add(
			subj.AllEvents(), // standbys and tools on the master's credential may follow
			subj.Snapshot(),
			subj.FromAgents(events.VerbRegister), subj.FromAgents(events.VerbHeartbeat), subj.FromAgents(events.VerbStatus),
			subj.LBReports(),
			inbox,
		)
		p.Resp = &jwt.ResponsePermission{MaxMsgs: 1}
	case RoleAgent:
		p.Pub.Allow.Add(subj.ToMasterFrom(name))
		p.Sub.Allow.Add(subj.ToAgent(name), inbox)
		p.Resp = &jwt.ResponsePermission{MaxMsgs: 1}
	case RoleSidecar:
		p.Pub.Allow.Add(subj.Snapshot(), subj.LBReport(name))
		p.Sub.Allow.Add(subj.AllEvents(), inbox)
	case RoleObserver:
		p.Pub.Allow.Add(subj.Snapshot())
		p.Sub.Allow.Add(subj.AllEvents(), inbox)
	}
	return p
}

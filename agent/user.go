package agent

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// identity is a user a task runs as, resolved on this agent: its name,
// uid, primary gid and supplementary groups.
type identity struct {
	Name   string   `json:"name"`
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

func (id identity) String() string { return fmt.Sprintf("%s (uid %d)", id.Name, id.UID) }

// lookupUser resolves name in this host's user database.
func lookupUser(name, host string) (identity, error) {
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		return identity{}, fmt.Errorf("user %s does not exist on agent %s", name, host)
	}
	if err != nil {
		return identity{}, fmt.Errorf("look up user %s on agent %s: %w", name, host, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return identity{}, fmt.Errorf("user %s on agent %s: bad uid %q", name, host, u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return identity{}, fmt.Errorf("user %s on agent %s: bad gid %q", name, host, u.Gid)
	}
	id := identity{Name: u.Username, UID: uint32(uid), GID: uint32(gid)}
	gids, err := u.GroupIds()
	if err != nil {
		return identity{}, fmt.Errorf("groups of user %s on agent %s: %w", name, host, err)
	}
	for _, g := range gids {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return identity{}, fmt.Errorf("groups of user %s on agent %s: bad gid %q", name, host, g)
		}
		id.Groups = append(id.Groups, uint32(n))
	}
	return id, nil
}

// selfIdentity is who the agent process runs as (its effective ids).
func selfIdentity() identity {
	uid, gid := os.Geteuid(), os.Getegid()
	id := identity{Name: strconv.Itoa(uid), UID: uint32(uid), GID: uint32(gid)}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		id.Name = u.Username
	}
	return id
}

// userPolicy decides which users this agent runs tasks as, as a Mesos
// agent with --switch_user does: an agent running as root runs a task as
// any user but root (unless allowed); any other agent only as itself.
type userPolicy struct {
	host      string
	self      identity // the agent process
	allowRoot bool     // tasks may run as uid 0
}

// check refuses a user the agent cannot or must not run a task as.
func (p userPolicy) check(id identity) error {
	if p.self.UID != 0 {
		if id.UID != p.self.UID {
			return fmt.Errorf("cannot run a task as user %s on agent %s: the agent runs as user %s, not as root, so it cannot switch users",
				id.Name, p.host, p.self.Name)
		}
		return nil
	}
	if id.UID == 0 && !p.allowRoot {
		return fmt.Errorf("refusing to run a task as root (user %s, uid 0) on agent %s: start the agent with --allow-root-tasks to allow it",
			id.Name, p.host)
	}
	return nil
}

// switches reports whether tasks of id run with other credentials than the
// agent's own.
func (p userPolicy) switches(id *identity) bool {
	return id != nil && p.self.UID == 0
}

// credential is what a task's processes run with; nil keeps the agent's
// own (an agent not running as root, or a task from before users, which
// ran as the agent).
func (p userPolicy) credential(id *identity) *syscall.Credential {
	if !p.switches(id) {
		return nil
	}
	return &syscall.Credential{Uid: id.UID, Gid: id.GID, Groups: append([]uint32(nil), id.Groups...)}
}

// resolveUser is who a task of the given user runs as ("" is the agent's
// default user), or why it cannot run on this agent.
func (a *Agent) resolveUser(name string) (identity, error) {
	if name == "" {
		name = a.cfg.DefaultUser
	}
	id, err := lookupUser(name, a.cfg.Hostname)
	if err != nil {
		return identity{}, err
	}
	return id, a.users.check(id)
}

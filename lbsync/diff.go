package lbsync

import (
	"sort"
	"strconv"
)

// Plan is what it takes to go from one applied Result to the next.
type Plan struct {
	// Reload is set when the config changed beyond server membership:
	// new, removed or changed frontends or backends, a backend whose slots
	// had to grow, or a path-map change (path prefixes are matched in file
	// order, which runtime additions cannot keep).
	Reload bool
	// Commands are runtime API commands, in order. They are worth sending
	// even with Reload set, since reloads take a while at scale.
	Commands []string
}

// Diff compares two Results. It is pure: the applier sends the commands
// and, for a reload, writes and checks the new config first. A nil prev
// means nothing is applied yet, which needs a reload.
func Diff(prev, next *Result) Plan {
	var p Plan
	if prev == nil {
		p.Reload = true
		return p
	}
	if prev.structure != next.structure || prev.PathMap != next.PathMap {
		p.Reload = true
	}
	// Renders share the *Backend of every backend whose slots did not
	// change (renderMembership copies one before changing it): only the
	// others can need a command, and after a task change that is one.
	var names []string
	for name, nb := range next.Backends {
		if pb := prev.Backends[name]; pb != nil && pb != nb {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		nb, pb := next.Backends[name], prev.Backends[name]
		if len(nb.Slots) != len(pb.Slots) {
			p.Reload = true
		}
		for i, ns := range nb.Slots {
			var ps Slot
			if i < len(pb.Slots) {
				ps = pb.Slots[i]
			} else {
				ps = Slot{Name: ns.Name} // a grown slot starts free
			}
			p.Commands = appendSlotCommands(p.Commands, name, ps, ns)
		}
	}
	p.Commands = appendMapCommands(p.Commands, next.mapPath, prev.Hosts, next.Hosts)
	return p
}

func appendSlotCommands(cmds []string, backend string, ps, ns Slot) []string {
	srv := backend + "/" + ns.Name
	switch {
	case ns.Free() && ps.Free():
	case ns.Free():
		cmds = append(cmds, "set server "+srv+" state maint")
	case ps.Free() || ps.TaskID != ns.TaskID || ps.Addr != ns.Addr || ps.Port != ns.Port:
		cmds = append(cmds,
			"set server "+srv+" addr "+ns.Addr+" port "+strconv.Itoa(ns.Port),
			"set server "+srv+" state "+readyOrDrain(ns))
	case ps.Draining != ns.Draining:
		cmds = append(cmds, "set server "+srv+" state "+readyOrDrain(ns))
	}
	return cmds
}

func appendMapCommands(cmds []string, path string, prev, next map[string]string) []string {
	var keys []string
	for k := range prev {
		if _, ok := next[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmds = append(cmds, "del map "+path+" "+k)
	}
	keys = keys[:0]
	for k := range next {
		if prev[k] != next[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := prev[k]; ok {
			cmds = append(cmds, "set map "+path+" "+k+" "+next[k])
		} else {
			cmds = append(cmds, "add map "+path+" "+k+" "+next[k])
		}
	}
	return cmds
}

// DrainingCommands returns the commands that put every draining slot of r
// in drain, for right after HAProxy loaded r's config.
func DrainingCommands(r *Result) []string {
	var cmds []string
	names := make([]string, 0, len(r.Backends))
	for name := range r.Backends {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, s := range r.Backends[name].Slots {
			if s.Draining {
				cmds = append(cmds, "set server "+name+"/"+s.Name+" state drain")
			}
		}
	}
	return cmds
}

func readyOrDrain(s Slot) string {
	if s.Draining {
		return "drain"
	}
	return "ready"
}

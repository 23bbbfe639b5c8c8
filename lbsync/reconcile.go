package lbsync

import (
	"context"
	"sort"
)

// Reconciler is an Applier that can repair drift: HAProxy changed behind
// the Syncer's back (someone used the runtime API or restarted it by hand,
// a worker died). Reconcile compares HAProxy with want, the Result last
// applied, and puts it back.
type Reconciler interface {
	Reconcile(ctx context.Context, want *Result) (Repairs, error)
}

// Repairs says what a Reconcile did.
type Repairs struct {
	Commands  int  // runtime API commands sent
	Reloaded  bool // HAProxy was reloaded (a backend or server was missing, or no worker ran)
	Restarted bool // the master had exited and was started again
}

// Drift compares the servers HAProxy reports ("show servers state") with
// want's slots: the runtime commands that put each slot's address, port
// and state (ready, drain, or maint for a free slot) back, and whether a
// backend or slot is missing altogether, which only a reload repairs.
// Servers of other backends (stats) are ignored.
func Drift(want *Result, have []ServerState) (cmds []string, reload bool) {
	got := make(map[string]map[string]ServerState, len(want.Backends))
	for _, st := range have {
		if want.Backends[st.Backend] == nil {
			continue
		}
		if got[st.Backend] == nil {
			got[st.Backend] = map[string]ServerState{}
		}
		got[st.Backend][st.Server] = st
	}
	names := make([]string, 0, len(want.Backends))
	for name := range want.Backends {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		servers := got[name]
		if servers == nil {
			reload = true
			continue
		}
		for _, ws := range want.Backends[name].Slots {
			st, ok := servers[ws.Name]
			if !ok {
				reload = true
				continue
			}
			cmds = appendSlotCommands(cmds, name, observedSlot(st, ws), ws)
		}
	}
	return cmds, reload
}

// observedSlot is the slot HAProxy has, in the terms appendSlotCommands
// compares: a server in maintenance is a free slot; a live one holds the
// wanted task (HAProxy knows no task ids) at whatever address it has.
func observedSlot(st ServerState, want Slot) Slot {
	s := Slot{Name: st.Server}
	if st.Maint() {
		return s
	}
	s.TaskID = want.TaskID
	if s.TaskID == "" {
		s.TaskID = "?" // live but should be free
	}
	s.Addr, s.Port = st.Addr, st.Port
	s.Draining = st.Drain()
	return s
}

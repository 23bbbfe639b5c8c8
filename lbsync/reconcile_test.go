package lbsync

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDrift(t *testing.T) {
	want := &Result{Backends: map[string]*Backend{"be": {Name: "be", Slots: []Slot{
		{Name: "be-1", TaskID: "t1", Addr: "127.0.0.5", Port: 31000},
		{Name: "be-2", TaskID: "t2", Addr: "127.0.0.6", Port: 31001, Draining: true},
		{Name: "be-3"},
	}}}}
	// As HAProxy reports them when all is well: be-3 disabled in the
	// config (0x05), be-2 drained at runtime (0x08).
	good := func() []ServerState {
		return []ServerState{
			{Backend: "be", Server: "be-1", Addr: "127.0.0.5", Port: 31000, AdminState: 0x04, UserWeight: 1},
			{Backend: "be", Server: "be-2", Addr: "127.0.0.6", Port: 31001, AdminState: 0x08, UserWeight: 1},
			{Backend: "be", Server: "be-3", Addr: "127.0.0.1", Port: 1, AdminState: 0x05, UserWeight: 1},
			{Backend: "stats", Server: "x", AdminState: 0x01},
		}
	}
	for _, tc := range []struct {
		name   string
		change func([]ServerState) []ServerState
		cmds   string
		reload bool
	}{
		{"in line", func(s []ServerState) []ServerState { return s }, "", false},
		{"draining by config weight", func(s []ServerState) []ServerState { s[1].AdminState, s[1].UserWeight = 0, 0; return s }, "", false},
		{"task slot in maint", func(s []ServerState) []ServerState { s[0].AdminState = 0x01; return s },
			"set server be/be-1 addr 127.0.0.5 port 31000;set server be/be-1 state ready", false},
		{"wrong port", func(s []ServerState) []ServerState { s[0].Port = 1; return s },
			"set server be/be-1 addr 127.0.0.5 port 31000;set server be/be-1 state ready", false},
		{"drain lost", func(s []ServerState) []ServerState { s[1].AdminState = 0; return s }, "set server be/be-2 state drain", false},
		{"free slot live", func(s []ServerState) []ServerState { s[2].AdminState = 0x04; return s }, "set server be/be-3 state maint", false},
		{"slot missing", func(s []ServerState) []ServerState { return append(s[:2], s[3]) }, "", true},
		{"backend missing", func(s []ServerState) []ServerState { return s[3:] }, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmds, reload := Drift(want, tc.change(good()))
			if strings.Join(cmds, ";") != tc.cmds || reload != tc.reload {
				t.Errorf("got %q reload %v, want %q reload %v", cmds, reload, tc.cmds, tc.reload)
			}
		})
	}
}

// TestReconcileOnHAProxy puts a slot into maintenance and another on a
// wrong address by hand, as an operator might: Reconcile sets both right,
// as "show servers state" and the traffic show, without a reload; a master
// killed outright is started again.
func TestReconcileOnHAProxy(t *testing.T) {
	h := newLBHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h.tasks("t1", "t2")
	if _, err := h.apply(nil); err != nil {
		t.Fatal(err)
	}
	h.waitServed(h.svc, "t1", "t2")
	p := h.a.Process()
	worker := p.WorkerPID()

	be := "echo_" + strconv.Itoa(h.svc)
	var s1, s2 Slot
	for _, s := range h.prev.Backends[be].Slots {
		switch s.TaskID {
		case "t1":
			s1 = s
		case "t2":
			s2 = s
		}
	}
	if _, err := h.a.Runtime().Exec(ctx, []string{
		"set server " + be + "/" + s1.Name + " state maint",
		"set server " + be + "/" + s2.Name + " addr 127.0.0.1 port 1",
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := get(h.svc); err == nil && got == "t1" {
		t.Fatalf("t1 still served after maint (%q)", got)
	}
	cmds, reload := Drift(h.prev, mustServersState(t, h))
	if len(cmds) == 0 || reload {
		t.Fatalf("drift not seen: %q reload %v", cmds, reload)
	}

	r, err := h.a.Reconcile(ctx, h.prev)
	if err != nil || r.Commands == 0 || r.Reloaded || r.Restarted {
		t.Fatalf("reconcile: %+v %v", r, err)
	}
	if cmds, reload := Drift(h.prev, mustServersState(t, h)); len(cmds) != 0 || reload {
		t.Fatalf("still drifting after reconcile: %q reload %v", cmds, reload)
	}
	for _, st := range mustServersState(t, h) {
		if st.Server == s2.Name && (st.Port != s2.Port || st.Maint()) || st.Server == s1.Name && st.Maint() {
			t.Errorf("after reconcile: %+v", st)
		}
	}
	h.waitServed(h.svc, "t1", "t2")
	if p.WorkerPID() != worker {
		t.Error("runtime drift repaired with a reload")
	}
	if r, err := h.a.Reconcile(ctx, h.prev); err != nil || r != (Repairs{}) {
		t.Errorf("second reconcile: %+v %v, want nothing to do", r, err)
	}

	// The master gone entirely: started again on the applied config.
	p.signal(9)
	<-p.Done()
	r, err = h.a.Reconcile(ctx, h.prev)
	if err != nil || !r.Restarted {
		t.Fatalf("reconcile after the master died: %+v %v", r, err)
	}
	h.waitServed(h.svc, "t1", "t2")
	if h.a.Process() == p {
		t.Error("same Process after a restart")
	}
}

func mustServersState(t *testing.T, h *lbHarness) []ServerState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := h.a.Runtime().ShowServersState(ctx)
	if err != nil {
		t.Fatal(fmt.Errorf("show servers state: %w", err))
	}
	return st
}

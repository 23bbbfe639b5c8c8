package lbsync

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/atollhq/atoll/events"
)

func echoWorld(tasks int) *world {
	w := newWorld()
	w.app("/echo", []int{10000}, map[string]string{"HAPROXY_GROUP": "external"})
	w.scale("/echo", tasks, 31000)
	return w
}

func TestDiff(t *testing.T) {
	cfg := Config{SlotStep: 8}
	for _, tc := range []struct {
		name   string
		before func() *world
		change func(w *world)
		reload bool
		cmds   []string
	}{
		{
			name:   "scale up within slots",
			before: func() *world { return echoWorld(2) },
			change: func(w *world) { w.task("/echo", "/echo.t02", "a2", 31002); w.task("/echo", "/echo.t03", "a2", 31003) },
			cmds: []string{
				"set server echo_10000/echo_10000-3 addr 127.0.10.2 port 31002",
				"set server echo_10000/echo_10000-3 state ready",
				"set server echo_10000/echo_10000-4 addr 127.0.10.2 port 31003",
				"set server echo_10000/echo_10000-4 state ready",
			},
		},
		{
			name:   "scale down",
			before: func() *world { return echoWorld(3) },
			change: func(w *world) { delete(w.s.Tasks, "/echo.t00"); delete(w.s.Tasks, "/echo.t02") },
			cmds: []string{
				"set server echo_10000/echo_10000-1 state maint",
				"set server echo_10000/echo_10000-3 state maint",
			},
		},
		{
			name:   "task replaced takes the free slot",
			before: func() *world { return echoWorld(3) },
			change: func(w *world) { delete(w.s.Tasks, "/echo.t01"); w.task("/echo", "/echo.t09", "a2", 31009) },
			cmds: []string{
				"set server echo_10000/echo_10000-2 addr 127.0.10.2 port 31009",
				"set server echo_10000/echo_10000-2 state ready",
			},
		},
		{
			name:   "task unhealthy agent gone",
			before: func() *world { return echoWorld(2) },
			change: func(w *world) {
				a := w.s.Agents["a1"]
				a.State = "unreachable"
				w.s.Agents["a1"] = a
			},
			cmds: []string{
				"set server echo_10000/echo_10000-1 state maint",
				"set server echo_10000/echo_10000-2 state maint",
			},
		},
		{
			// 4 tasks get 8 slots (room for a rolling restart); 9 do not fit.
			name:   "slots full",
			before: func() *world { return echoWorld(4) },
			change: func(w *world) {
				for i := 95; i < 100; i++ {
					w.task("/echo", fmt.Sprintf("/echo.t%d", i), "a2", 31000+i)
				}
			},
			reload: true,
			cmds: []string{
				"set server echo_10000/echo_10000-5 addr 127.0.10.2 port 31095",
				"set server echo_10000/echo_10000-5 state ready",
				"set server echo_10000/echo_10000-6 addr 127.0.10.2 port 31096",
				"set server echo_10000/echo_10000-6 state ready",
				"set server echo_10000/echo_10000-7 addr 127.0.10.2 port 31097",
				"set server echo_10000/echo_10000-7 state ready",
				"set server echo_10000/echo_10000-8 addr 127.0.10.2 port 31098",
				"set server echo_10000/echo_10000-8 state ready",
				"set server echo_10000/echo_10000-9 addr 127.0.10.2 port 31099",
				"set server echo_10000/echo_10000-9 state ready",
			},
		},
		{
			name:   "new app",
			before: func() *world { return echoWorld(1) },
			change: func(w *world) { w.app("/new", []int{10001}, map[string]string{"HAPROXY_GROUP": "external"}) },
			reload: true,
		},
		{
			name:   "app removed",
			before: func() *world { return echoWorld(1) },
			change: func(w *world) { delete(w.s.Apps, "/echo") },
			reload: true,
		},
		{
			name: "vhost added, changed and removed",
			before: func() *world {
				w := echoWorld(1)
				w.app("/web", []int{10001}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "a.example,b.example"})
				w.app("/web2", []int{10002}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "c.example"})
				return w
			},
			change: func(w *world) {
				w.app("/web", []int{10001}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "a.example,c.example, d.example"})
				w.app("/web2", []int{10002}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "e.example"})
			},
			cmds: []string{
				"del map /etc/haproxy/vhosts.map b.example",
				"set map /etc/haproxy/vhosts.map c.example web_10001",
				"add map /etc/haproxy/vhosts.map d.example web_10001",
				"add map /etc/haproxy/vhosts.map e.example web2_10002",
			},
		},
		{
			name: "vhost moves to another app",
			before: func() *world {
				w := echoWorld(0)
				w.app("/web", []int{10001}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "a.example"})
				w.app("/web2", []int{10002}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"})
				return w
			},
			change: func(w *world) {
				w.app("/web", []int{10001}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"})
				w.app("/web2", []int{10002}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "a.example"})
			},
			cmds: []string{"set map /etc/haproxy/vhosts.map a.example web2_10002"},
		},
		{
			name:   "path added",
			before: func() *world { return echoWorld(0) },
			change: func(w *world) {
				w.app("/echo", []int{10000}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "a.example", "HAPROXY_0_PATH": "/x"})
			},
			reload: true,
		},
		{
			name:   "label changes backend",
			before: func() *world { return echoWorld(1) },
			change: func(w *world) {
				w.app("/echo", []int{10000}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_BALANCE": "leastconn"})
			},
			reload: true,
		},
		{
			name:   "task being killed drains, then leaves",
			before: func() *world { return echoWorld(2) },
			change: func(w *world) {
				t := w.s.Tasks["/echo.t01"]
				t.State = "TASK_KILLING"
				w.s.Tasks["/echo.t01"] = t
				w.s.Tasks["/new"] = events.Task{ID: "/new", AppID: "/echo", AgentID: "a1", State: "TASK_KILLING", Ports: []int{1}}
			},
			cmds: []string{"set server echo_10000/echo_10000-2 state drain"},
		},
		{
			name:   "nothing changed",
			before: func() *world { return echoWorld(3) },
			change: func(w *world) {},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.before()
			prev := mustRender(t, nil, w.s, cfg)
			tc.change(w)
			next := mustRender(t, prev, w.s, cfg)
			p := Diff(prev, next)
			if p.Reload != tc.reload {
				t.Errorf("reload = %v, want %v", p.Reload, tc.reload)
			}
			if !reflect.DeepEqual(p.Commands, tc.cmds) && !(len(p.Commands) == 0 && len(tc.cmds) == 0) {
				t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(p.Commands, "\n"), strings.Join(tc.cmds, "\n"))
			}
		})
	}
}

func TestDiffNilPrevReloads(t *testing.T) {
	next := mustRender(t, nil, echoWorld(1).s, Config{})
	if p := Diff(nil, next); !p.Reload {
		t.Error("no reload from nothing")
	}
}

// TestStableSlots: a task keeps its slot across any number of renders,
// whatever happens to the others.
func TestStableSlots(t *testing.T) {
	w := echoWorld(5)
	r := mustRender(t, nil, w.s, Config{})
	slotOf := func(r *Result, task string) string {
		for _, s := range r.Backends["echo_10000"].Slots {
			if s.TaskID == task {
				return s.Name
			}
		}
		return ""
	}
	want := map[string]string{}
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("/echo.t%02d", i)
		want[id] = slotOf(r, id)
	}
	// Remove two, add three, render from scratch order-independent ids.
	delete(w.s.Tasks, "/echo.t00")
	delete(w.s.Tasks, "/echo.t03")
	delete(want, "/echo.t00")
	delete(want, "/echo.t03")
	w.task("/echo", "/echo.a", "a2", 32000)
	w.task("/echo", "/echo.b", "a2", 32001)
	w.task("/echo", "/echo.c", "a2", 32002)
	for i := 0; i < 3; i++ {
		r = mustRender(t, r, w.s, Config{})
		for id, s := range want {
			if got := slotOf(r, id); got != s {
				t.Fatalf("render %d: %s moved from %s to %s", i, id, s, got)
			}
		}
	}
	// The new tasks filled the freed slots first.
	if slotOf(r, "/echo.a") != "echo_10000-1" || slotOf(r, "/echo.b") != "echo_10000-4" || slotOf(r, "/echo.c") != "echo_10000-6" {
		t.Errorf("new tasks in %s %s %s", slotOf(r, "/echo.a"), slotOf(r, "/echo.b"), slotOf(r, "/echo.c"))
	}
	// Scale to 20 (grows to 40 slots: room for a rolling restart of 20),
	// back to 2: slots do not shrink.
	w.scale("/echo", 20, 33000)
	r = mustRender(t, r, w.s, Config{})
	if n := len(r.Backends["echo_10000"].Slots); n != 40 {
		t.Errorf("%d slots, want 40", n)
	}
	w.scale("/echo", 2, 33000)
	next := mustRender(t, r, w.s, Config{})
	if n := len(next.Backends["echo_10000"].Slots); n != 40 {
		t.Errorf("%d slots after scale down, want 40", n)
	}
	if p := Diff(r, next); p.Reload || len(p.Commands) != 18 {
		t.Errorf("scale down: reload %v, %d commands", p.Reload, len(p.Commands))
	}
}

// TestDrainingCommands: a killing task's slot is written as a live server
// (no "weight 0" that would outlive the task in its slot) and drained by
// command after a reload.
func TestDrainingCommands(t *testing.T) {
	w := echoWorld(3)
	serving := mustRender(t, nil, w.s, Config{})
	k := w.s.Tasks["/echo.t01"]
	k.State = events.TaskKilling
	w.s.Tasks[k.ID] = k
	r := mustRender(t, serving, w.s, Config{})
	got := DrainingCommands(r)
	if len(got) != 1 || got[0] != "set server echo_10000/echo_10000-2 state drain" {
		t.Errorf("got %v", got)
	}
	if strings.Contains(r.Config, "weight 0") {
		t.Errorf("config drains by weight:\n%s", r.Config)
	}
}

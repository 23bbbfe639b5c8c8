package lbsync

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/templates"
)

// fullRender renders without the membership shortcut: a quarantine entry
// for an app that does not exist changes nothing else.
func fullRender(t *testing.T, prev *Result, s *events.State, set *templates.Set) *Result {
	t.Helper()
	r, err := renderNext(prev, s, Config{}, set, Quarantine{"/nobody": {}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

// TestMembershipRenderMatchesFull: for changes that only move tasks, the
// shortcut gives exactly what a full render gives; for anything else it
// steps aside.
func TestMembershipRenderMatchesFull(t *testing.T) {
	for _, tc := range []struct {
		name     string
		change   func(w *world)
		shortcut bool
	}{
		{"task added within the slots", func(w *world) { w.task("/echo", "/echo.t09", "a2", 32009) }, true},
		{"task gone", func(w *world) { delete(w.s.Tasks, "/echo.t01") }, true},
		{"task killing", func(w *world) {
			k := w.s.Tasks["/echo.t02"]
			k.State = events.TaskKilling
			w.s.Tasks[k.ID] = k
		}, true},
		{"agent unreachable", func(w *world) {
			a := w.s.Agents["a2"]
			a.State = events.AgentUnreachable
			w.s.Agents["a2"] = a
		}, true},
		{"grown past the slots", func(w *world) {
			for i := 10; i < 20; i++ {
				w.task("/echo", fmt.Sprintf("/echo.t%02d", i), "a1", 33000+i)
			}
		}, false},
		{"label changed", func(w *world) {
			w.app("/echo", []int{10000}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_BALANCE": "leastconn"})
		}, false},
		{"app added", func(w *world) { w.app("/other", []int{10001}, map[string]string{"HAPROXY_GROUP": "external"}) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := echoWorld(3)
			w.task("/echo", "/echo.t05", "a2", 32005)
			w.app("/web", []int{10002}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example"})
			w.task("/web", "/web.t1", "a2", 32100)
			set := templates.MustDefault() // one set, as a sidecar has
			render := func(prev *Result) *Result {
				r, err := RenderNext(prev, w.s, Config{}, set)
				if err != nil {
					t.Fatal(err)
				}
				return &r
			}
			prev := render(nil)
			tc.change(w)

			_, took := renderMembership(prev, w.s, Config{}.withDefaults(), set, nil, nil)
			if took != tc.shortcut {
				t.Fatalf("shortcut taken %v, want %v", took, tc.shortcut)
			}
			got := render(prev)
			want := fullRender(t, prev, w.s, set)
			if got.Config != want.Config || got.HostMap != want.HostMap || got.PathMap != want.PathMap {
				t.Fatalf("config differs from a full render:\n%s\n--- want\n%s", got.Config, want.Config)
			}
			if !reflect.DeepEqual(got.Backends, want.Backends) || got.structure != want.structure {
				t.Fatal("backends or structure differ from a full render")
			}
			if a, b := Diff(prev, got), Diff(prev, want); !reflect.DeepEqual(a, b) {
				t.Fatalf("plans differ: %+v vs %+v", a, b)
			}
			// A second move from the shortcut's own result: the offsets
			// it kept must still point at the right lines.
			if tc.shortcut {
				w.task("/web", "/web.t2", "a1", 32101)
				delete(w.s.Tasks, "/echo.t00")
				again, want2 := render(got), fullRender(t, got, w.s, set)
				if again.Config != want2.Config || !reflect.DeepEqual(again.Backends, want2.Backends) {
					t.Fatalf("second move differs from a full render:\n%s\n--- want\n%s", again.Config, want2.Config)
				}
				delete(w.s.Tasks, "/web.t2")
				w.task("/echo", "/echo.t00", "a1", 31000)
			}
			// Told which app the events touched, the shortcut looks at
			// that app only and still gives the same.
			if tc.shortcut && tc.name != "agent unreachable" {
				only, ok := renderMembership(prev, w.s, Config{}.withDefaults(), set, nil, map[string]bool{"/echo": true})
				if !ok || only.Config != want.Config || !reflect.DeepEqual(only.Backends, want.Backends) {
					t.Fatalf("render of the touched app only (taken %v) differs from a full render", ok)
				}
			}
		})
	}
}

package lbsync

import (
	"fmt"
	"testing"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/templates"
)

// world builds states for tests.
type world struct{ s *events.State }

func newWorld() *world {
	s := events.NewState()
	s.Agents["a1"] = events.Agent{ID: "a1", IP: "127.0.10.1", State: events.AgentActive}
	s.Agents["a2"] = events.Agent{ID: "a2", IP: "127.0.10.2", State: events.AgentActive}
	s.Agents["gone"] = events.Agent{ID: "gone", IP: "127.0.10.9", State: events.AgentUnreachable}
	return &world{s: s}
}

func (w *world) app(id string, ports []int, labels map[string]string) *events.App {
	a := events.App{ID: id, Labels: labels}
	for _, p := range ports {
		a.PortDefinitions = append(a.PortDefinitions, events.PortDefinition{Port: p})
	}
	w.s.Apps[id] = a
	a2 := w.s.Apps[id]
	return &a2
}

// task adds a running task of app on agent with host ports.
func (w *world) task(app, id, agent string, ports ...int) {
	w.s.Tasks[id] = events.Task{ID: id, AppID: app, AgentID: agent, State: events.TaskRunning, Ports: ports}
}

func (w *world) scale(app string, n int, basePort int) {
	for id, t := range w.s.Tasks {
		if t.AppID == app {
			delete(w.s.Tasks, id)
		}
	}
	for i := 0; i < n; i++ {
		w.task(app, fmt.Sprintf("%s.t%02d", app, i), "a1", basePort+i)
	}
}

func mustRender(t testing.TB, prev *Result, s *events.State, cfg Config) *Result {
	t.Helper()
	r, err := RenderNext(prev, s, cfg, templates.MustDefault())
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

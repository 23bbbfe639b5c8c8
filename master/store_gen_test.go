package master

import (
	"fmt"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// scaleChanges are the changes that build a cluster of the given size:
// agents, apps with a health check and a few labels, and tasks running
// on them with Marathon-style ids, as a large cluster holds them.
func scaleChanges(tasks, apps, agents int) []events.Change {
	out := make([]events.Change, 0, tasks+apps+agents)
	for i := range agents {
		ag := eventstest.Agent(fmt.Sprintf("agent-%04d", i))
		ag.IP = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		out = append(out, events.PutAgent(ag))
	}
	for i := range apps {
		a := eventstest.App(fmt.Sprintf("/scale/group%02d/app%05d", i%50, i), tasks/apps)
		a.Labels = map[string]string{"team": fmt.Sprintf("team-%d", i%20), "tier": "web"}
		a.Env = map[string]string{"PORT_NAME": "http", "LOG_LEVEL": "info"}
		a.HealthChecks = []events.HealthCheck{{Protocol: "HTTP", Path: "/health", PortIndex: new(0),
			GracePeriodSeconds: 30, IntervalSeconds: 10, TimeoutSeconds: 5, MaxConsecutiveFailures: 3}}
		out = append(out, events.PutApp(a))
	}
	started := eventstest.T0.Add(time.Minute)
	for i := range tasks {
		app := i % apps
		agent := fmt.Sprintf("agent-%04d", (i*7)%agents)
		t := eventstest.Task(fmt.Sprintf("scale_group%02d_app%05d.%08x-1c2d-11ef-9a3b-0242ac110002", app%50, app, i),
			fmt.Sprintf("/scale/group%02d/app%05d", app%50, app), agent, events.TaskRunning)
		t.Host = agent + ".test"
		t.Ports = []int{31000 + i%1000}
		t.StartedAt = &started
		healthy := true
		t.Healthy = &healthy
		t.ConfigVersion = eventstest.T0
		out = append(out, events.PutTask(t))
	}
	return out
}

// stampAll stamps changes as consecutive events after st in epoch, and
// applies them to st.
func stampAll(st *events.State, epoch uint64, changes []events.Change) []events.Event {
	evs := make([]events.Event, len(changes))
	for i, c := range changes {
		e := c.Stamp(st, epoch, eventstest.T0.Add(time.Duration(st.Seq+1)*time.Millisecond))
		if err := st.Apply(e); err != nil {
			panic(err)
		}
		evs[i] = e
	}
	return evs
}

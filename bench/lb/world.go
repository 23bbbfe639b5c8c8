package main

import (
	"github.com/atollhq/atoll/bench/internal/leader"
	"github.com/atollhq/atoll/events"
)

// world is the benchmark's view of the cluster it drives through the
// leader: which app listens where and which backend each task is.
type world struct {
	l      *leader.Leader
	apps   []*appModel
	serial int // next task serial
}

type appModel struct {
	idx, port int
	tasks     []taskRef // running, in start order
}

type taskRef struct {
	id string
	b  *backend
}

// addApp is the changes that create app idx on port with one task on each
// backend given.
func (w *world) addApp(idx, port int, bs []*backend) (*appModel, []events.Change) {
	a := &appModel{idx: idx, port: port}
	w.apps = append(w.apps, a)
	cs := []events.Change{events.PutApp(benchApp(idx, port, len(bs)))}
	for _, b := range bs {
		cs = append(cs, w.start(a, b))
	}
	return a, cs
}

// start is the change that starts a new task of a on backend b.
func (w *world) start(a *appModel, b *backend) events.Change {
	t := taskRef{id: taskID(a.idx, w.serial), b: b}
	w.serial++
	a.tasks = append(a.tasks, t)
	return events.PutTask(benchTask(a.idx, t.id, b.port, events.TaskRunning))
}

// end is the change that moves task t of a to state (killing: it stays
// in the model; terminal: it leaves it).
func (w *world) end(a *appModel, t taskRef, state events.TaskState) events.Change {
	if state.Terminal() {
		for i, x := range a.tasks {
			if x.id == t.id {
				a.tasks = append(a.tasks[:i:i], a.tasks[i+1:]...)
				break
			}
		}
	}
	return events.PutTask(benchTask(a.idx, t.id, t.b.port, state))
}

// ids are the backend ids serving a.
func (a *appModel) ids() map[string]bool {
	m := map[string]bool{}
	for _, t := range a.tasks {
		m[t.b.id] = true
	}
	return m
}

// spare is a backend of pool that serves none of a's tasks.
func (a *appModel) spare(pool []*backend, from int) *backend {
	used := a.ids()
	for i := range pool {
		b := pool[(from+i)%len(pool)]
		if !used[b.id] {
			return b
		}
	}
	return nil
}

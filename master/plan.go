package master

import (
	"math"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/master/scheduler"
)

// appPlan is what one reconcile pass wants done for one app.
type appPlan struct {
	// Launch is how many new-version instances to place now.
	Launch int
	// Kill lists task ids to kill now.
	Kill []string
	// Done means the app has converged: instances tasks of the current
	// config, all ready, none on their way out.
	Done bool
}

// ready reports whether a task may carry traffic: running, and healthy
// when the app has health checks.
func ready(app events.App, t events.Task) bool {
	if t.State != events.TaskRunning {
		return false
	}
	return len(app.HealthChecks) == 0 || (t.Healthy != nil && *t.Healthy)
}

// takesOver reports whether a task of the app's current config may take
// over from old ones: ready, and past its readiness checks when the app
// has them (Marathon holds a deployment step until both). Old tasks are
// judged by ready alone: they serve whatever checks came after them.
func takesOver(app events.App, t events.Task) bool {
	if len(app.ReadinessChecks) > 0 && (t.Ready == nil || !*t.Ready) {
		return false
	}
	return ready(app, t)
}

// current reports whether a task runs the app's current config.
func current(app events.App, t events.Task) bool {
	if !t.ConfigVersion.IsZero() {
		return t.ConfigVersion.Equal(app.VersionInfo.LastConfigChangeAt)
	}
	return !t.Version.Before(app.VersionInfo.LastConfigChangeAt) // stored before ConfigVersion
}

// planApp decides launches and kills for one app from the state alone.
// Scaling adds or removes instances; a config change replaces old tasks
// by the upgrade strategy: never fewer than minimumHealthCapacity ready
// instances, never more than maximumOverCapacity extra ones.
func planApp(s *events.State, app events.App, now time.Time) appPlan {
	var newLive, oldLive []events.Task
	killing := 0
	// held counts unreachable tasks of the current config that are not
	// inactive yet (unreachableStrategy): they keep their place, so no
	// replacement is launched for them yet.
	held := 0
	for _, t := range s.TasksOf(app.ID) {
		switch {
		case t.State == events.TaskUnreachable:
			if !inactive(app, t, now) && current(app, t) {
				held++
			}
		case t.State == events.TaskKilling:
			killing++
		case t.State == events.TaskStaging || t.State == events.TaskStarting || t.State == events.TaskRunning:
			if current(app, t) {
				newLive = append(newLive, t)
			} else {
				oldLive = append(oldLive, t)
			}
		}
	}
	n := app.Instances
	var p appPlan

	if len(oldLive) == 0 {
		switch {
		case len(newLive) > n:
			p.Kill = scheduler.SelectKills(s, app, len(newLive)-n)
		case len(newLive)+held < n:
			p.Launch = n - len(newLive) - held
		case held > 0: // waiting for the unreachable ones to come back or go
		default:
			p.Done = killing == 0
			for _, t := range newLive {
				if !takesOver(app, t) {
					p.Done = false
				}
			}
		}
		return p
	}

	maxTotal := int(math.Floor(float64(n) * (1 + app.UpgradeStrategy.MaximumOverCapacity)))
	minReady := int(math.Ceil(float64(n) * app.UpgradeStrategy.MinimumHealthCapacity))
	readyNew, readyOld := 0, 0
	for _, t := range newLive {
		if takesOver(app, t) {
			readyNew++
		}
	}
	// Old tasks that carry no traffic go first: they hold no capacity.
	var readyOldTasks []events.Task
	for _, t := range oldLive {
		if ready(app, t) {
			readyOldTasks = append(readyOldTasks, t)
			readyOld++
		} else {
			p.Kill = append(p.Kill, t.ID)
		}
	}
	// Ready old tasks go as far as the ready count allows; with more new
	// ready tasks than needed, the old ones all go.
	canKill := readyNew + readyOld - minReady
	if readyNew >= n {
		canKill = readyOld
	}
	for i := 0; i < canKill && i < len(readyOldTasks); i++ {
		p.Kill = append(p.Kill, readyOldTasks[i].ID)
	}
	total := len(newLive) + len(oldLive) - len(p.Kill)
	p.Launch = min(n-len(newLive)-held, maxTotal-total)
	if p.Launch < 0 {
		p.Launch = 0
	}
	// No room above capacity and none below the minimum (1 and 0): as
	// Marathon does, go one instance under for a moment — kill one old
	// task once every new one is ready, then replace it.
	if p.Launch == 0 && len(p.Kill) == 0 && readyNew == len(newLive) && len(newLive) < n && len(readyOldTasks) > 0 {
		p.Kill = append(p.Kill, readyOldTasks[0].ID)
	}
	// Surplus new tasks (the app shrank while rolling) go too.
	if len(newLive) > n {
		p.Kill = append(p.Kill, scheduler.SelectKills(s, app, len(newLive)-n)...)
	}
	return p
}

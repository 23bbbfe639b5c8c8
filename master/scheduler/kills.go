package scheduler

import "github.com/atollhq/atoll/events"

// Kill priorities, lowest killed first: a task that has not started costs
// the least to lose, then one that is unhealthy, then one that breaks the
// app's constraints (for example after they changed), then any other.
const (
	killNotRunning = iota
	killUnhealthy
	killViolating
	killOther
)

// SelectKills picks which n of the app's live tasks to kill when scaling
// down, and returns their ids in kill order. Live means staging, starting
// or running: a task being killed is already going, and an unreachable one
// cannot be reached to kill. Within a priority, the most recently staged
// goes first (the least recently with the app's killSelection
// OLDEST_FIRST), then the smallest id.
//
// It chooses one task at a time, so that constraint violations are judged
// against the tasks that remain: of two tasks sharing a host under
// [hostname UNIQUE], only one is killed for it.
func SelectKills(s *events.State, app events.App, n int) []string {
	var live []events.Task
	for _, t := range s.TasksOf(app.ID) {
		switch t.State {
		case events.TaskStaging, events.TaskStarting, events.TaskRunning:
			live = append(live, t)
		}
	}
	n = min(n, len(live))
	if n <= 0 {
		return nil
	}
	// A stored app should not have bad constraints; if it does, the valid
	// ones still say which tasks are misplaced.
	rules := compile(validConstraints(app.Constraints))
	sites := make([]site, len(live))
	for i, t := range live {
		sites[i] = taskSite(s, t)
	}

	oldestFirst := app.KillSelection == events.KillOldestFirst
	out := make([]string, 0, n)
	for len(out) < n {
		tallies := make([]tally, len(rules))
		for i, r := range rules {
			tallies[i] = r.tally(sites)
		}
		best, bestPrio := -1, 0
		for i, t := range live {
			prio := killPriority(t, sites[i], rules, tallies)
			if best < 0 || killsBefore(t, prio, live[best], bestPrio, oldestFirst) {
				best, bestPrio = i, prio
			}
		}
		out = append(out, live[best].ID)
		live = append(live[:best], live[best+1:]...)
		sites = append(sites[:best], sites[best+1:]...)
	}
	return out
}

func killPriority(t events.Task, at site, rules []rule, tallies []tally) int {
	switch {
	case t.State == events.TaskStaging || t.State == events.TaskStarting:
		return killNotRunning
	case t.Healthy != nil && !*t.Healthy:
		return killUnhealthy
	}
	for i, r := range rules {
		if r.violated(at, tallies[i]) {
			return killViolating
		}
	}
	return killOther
}

// killsBefore orders kills: priority, then most recently staged, then id.
func killsBefore(a events.Task, pa int, b events.Task, pb int, oldestFirst bool) bool {
	if pa != pb {
		return pa < pb
	}
	if c := b.StagedAt.Compare(a.StagedAt); c != 0 {
		return (c < 0) != oldestFirst
	}
	return a.ID < b.ID
}

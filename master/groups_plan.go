package master

import (
	"slices"

	"github.com/atollhq/atoll/events"
)

// How a change of several apps is carried out, as Marathon's
// DeploymentPlan orders it: first every app that goes is stopped, then
// every new app is created (with no task yet), then the new and changed
// apps are brought up layer by layer of the dependency graph, the apps
// that depend on nothing first. Each step starts once the one before it
// is done: its apps run their instances, healthy (deployment.go holds an
// app back until its step comes).

// Marathon's action names (DeploymentAction.actionName).
const (
	actionStart   = "StartApplication"
	actionStop    = "StopApplication"
	actionScale   = "ScaleApplication"
	actionRestart = "RestartApplication"
)

// msgCycle is Marathon's refusal of a dependency cycle (RootGroup's
// noCyclicDependencies), at path "/".
const msgCycle = "Dependency graph has cyclic dependencies."

// dependencyGraph is, for each app, the apps it depends on: its own
// dependencies and those of every group it lives in, where a dependency
// on a group means one on every app below it. Dependencies that name
// nothing are left out, as Marathon's RootGroup.applicationDependencies
// leaves them out.
func dependencyGraph(apps map[string]events.App, groups map[string]events.Group) map[string][]string {
	ids := make([]string, 0, len(apps))
	for id := range apps {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	targets := func(dep string) []string {
		if _, ok := apps[dep]; ok {
			return []string{dep}
		}
		// The apps below group dep: a contiguous run of the sorted ids.
		prefix := dep + "/"
		if dep == rootGroupID {
			prefix = "/"
		}
		i, _ := slices.BinarySearch(ids, prefix)
		var out []string
		for ; i < len(ids) && len(ids[i]) > len(prefix) && ids[i][:len(prefix)] == prefix; i++ {
			out = append(out, ids[i])
		}
		return out
	}
	graph := make(map[string][]string, len(apps))
	for _, id := range ids {
		deps := slices.Clone(apps[id].Dependencies)
		for _, g := range ancestorsOf(id) {
			deps = append(deps, groups[g].Dependencies...)
		}
		var edges []string
		for _, d := range deps {
			edges = append(edges, targets(d)...)
		}
		slices.Sort(edges)
		if edges = slices.Compact(edges); len(edges) > 0 {
			graph[id] = edges
		}
	}
	return graph
}

// longestPaths is, for each app, the number of apps on the longest path
// of dependencies that starts at it (1 for an app that depends on
// nothing), or false when the graph has a cycle.
func longestPaths(apps map[string]events.App, graph map[string][]string) (map[string]int, bool) {
	const (
		unseen = iota
		open
		closed
	)
	mark := make(map[string]int, len(apps))
	depth := make(map[string]int, len(apps))
	var visit func(id string) bool
	visit = func(id string) bool {
		switch mark[id] {
		case open:
			return false // back on the path: a cycle
		case closed:
			return true
		}
		mark[id] = open
		d := 1
		for _, next := range graph[id] {
			if !visit(next) {
				return false
			}
			d = max(d, depth[next]+1)
		}
		mark[id], depth[id] = closed, d
		return true
	}
	for id := range apps {
		if !visit(id) {
			return nil, false
		}
	}
	return depth, true
}

// checkNoCycle refuses a set of apps whose dependencies go round.
func checkNoCycle(apps map[string]events.App, groups map[string]events.Group) error {
	if _, ok := longestPaths(apps, dependencyGraph(apps, groups)); !ok {
		return &ValidationError{Details: []FieldErrors{{Path: "/", Errors: []string{msgCycle}}}}
	}
	return nil
}

// planSteps orders the change from the apps from to the apps to (both by
// id; groups are to's group records) into Marathon's steps, and returns
// them with the ids of the apps the change touches, sorted. Unchanged
// apps get no action, but still order the others.
func planSteps(from, to map[string]events.App, groups map[string]events.Group) ([]events.DeploymentStep, []string, error) {
	depth, ok := longestPaths(to, dependencyGraph(to, groups))
	if !ok {
		return nil, nil, &ValidationError{Details: []FieldErrors{{Path: "/", Errors: []string{msgCycle}}}}
	}
	var stop, start []events.DeploymentAction
	var affected []string
	for id := range from {
		if _, stays := to[id]; !stays {
			stop = append(stop, events.DeploymentAction{Action: actionStop, App: id})
			affected = append(affected, id)
		}
	}
	layers := map[int][]events.DeploymentAction{}
	for id, app := range to {
		old, existed := from[id]
		var act string
		switch {
		case !existed:
			start = append(start, events.DeploymentAction{Action: actionStart, App: id})
			act = actionScale
		case !scalingOnly(old, app):
			act = actionRestart
		case old.Instances != app.Instances:
			act = actionScale
		default:
			continue
		}
		affected = append(affected, id)
		layers[depth[id]] = append(layers[depth[id]], events.DeploymentAction{Action: act, App: id})
	}
	byApp := func(a, b events.DeploymentAction) int {
		if a.App < b.App {
			return -1
		}
		if a.App > b.App {
			return 1
		}
		return 0
	}
	var steps []events.DeploymentStep
	add := func(acts []events.DeploymentAction) {
		if len(acts) > 0 {
			slices.SortFunc(acts, byApp)
			steps = append(steps, events.DeploymentStep{Actions: acts})
		}
	}
	add(stop)
	add(start)
	keys := make([]int, 0, len(layers))
	for k := range layers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add(layers[k])
	}
	slices.Sort(affected)
	return steps, affected, nil
}

// stepOfApp is the (1-based) last step of d that acts on the app, or 0:
// the step whose turn the app waits for before it changes.
func stepOfApp(d events.Deployment, appID string) int {
	for i := len(d.Steps) - 1; i >= 0; i-- {
		for _, a := range d.Steps[i].Actions {
			if a.App == appID {
				return i + 1
			}
		}
	}
	return 0
}

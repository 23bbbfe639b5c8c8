package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// The chaos app: one echo task on each of four agents, so every region
// serves it and a lost agent or region leaves free agents to replace it.
const (
	chaosAppID   = "/chaos/web"
	chaosDNSName = "web.chaos.marathon.mesos"
	chaosApp     = `{"id":"/chaos/web","cmd":"atoll echo","instances":4,"cpus":0.1,"mem":32,
 "portDefinitions":[{"port":0,"protocol":"tcp","name":"http"}],
 "constraints":[["hostname","UNIQUE"]],"labels":{"HAPROXY_GROUP":"external"}}`
)

// view is what the public API says about the cluster at one instant.
type view struct {
	leader string // "ip:port"
	apps   map[string]App
	tasks  []Task
	agents map[string]Agent // by id
}

// observe reads leader, apps, tasks and agents from the first master of
// rs that answers all four.
func observe(a *api, rs []Region) (view, error) {
	var errs []string
	for _, r := range rs {
		v, err := observeAt(a, r)
		if err == nil {
			return v, nil
		}
		errs = append(errs, err.Error())
	}
	return view{}, fmt.Errorf("no master answers: %s", strings.Join(errs, "; "))
}

func observeAt(a *api, r Region) (view, error) {
	base := masterURL(r)
	var v view
	var err error
	if v.leader, err = a.leaderOf(r); err != nil {
		return v, err
	}
	apps, err := a.apps(base)
	if err != nil {
		return v, err
	}
	v.apps = map[string]App{}
	for _, ap := range apps {
		v.apps[ap.ID] = ap
	}
	if v.tasks, err = a.tasks(base); err != nil {
		return v, err
	}
	ags, err := a.agents(base)
	if err != nil {
		return v, err
	}
	v.agents = map[string]Agent{}
	for _, ag := range ags {
		v.agents[ag.ID] = ag
	}
	return v, nil
}

// running lists the app's TASK_RUNNING tasks.
func (v view) running(appID string) []Task {
	var ts []Task
	for _, t := range v.tasks {
		if t.AppID == appID && t.State == "TASK_RUNNING" {
			ts = append(ts, t)
		}
	}
	return ts
}

// hostOf is the agent hostname ("r2-a1") a task runs on.
func (v view) hostOf(t Task) string {
	if ag, ok := v.agents[t.SlaveID]; ok {
		return ag.Hostname
	}
	return t.Host
}

func (v view) activeAgents() int {
	n := 0
	for _, ag := range v.agents {
		if ag.Active {
			n++
		}
	}
	return n
}

// duplicates lists task ids that appear more than once.
func (v view) duplicates() []string {
	seen := map[string]int{}
	for _, t := range v.tasks {
		seen[t.ID]++
	}
	var d []string
	for id, n := range seen {
		if n > 1 {
			d = append(d, id)
		}
	}
	sort.Strings(d)
	return d
}

// settled says why the cluster is not yet at rest: every master agrees
// on a leader, all agents active, the app at its instance count with no
// deployment and no surplus.
func (l *Lab) settled(a *api) (view, error) {
	if _, err := currentLeader(a, l.masterRegions()); err != nil {
		return view{}, err
	}
	v, err := observe(a, l.masterRegions())
	if err != nil {
		return v, err
	}
	if n := v.activeAgents(); n != 6 {
		return v, fmt.Errorf("%d of 6 agents active", n)
	}
	app, ok := v.apps[chaosAppID]
	if !ok {
		return v, fmt.Errorf("no app %s", chaosAppID)
	}
	if len(app.Deployments) > 0 {
		return v, fmt.Errorf("%s is deploying", chaosAppID)
	}
	if n := len(v.running(chaosAppID)); n != app.Instances {
		return v, fmt.Errorf("%s: %d of %d tasks running", chaosAppID, n, app.Instances)
	}
	if n := countApp(v.tasks, chaosAppID); n != app.Instances {
		return v, fmt.Errorf("%s: %d tasks, want %d", chaosAppID, n, app.Instances)
	}
	if d := v.duplicates(); len(d) > 0 {
		return v, fmt.Errorf("duplicated task ids %v", d)
	}
	return v, nil
}

func countApp(ts []Task, appID string) int {
	n := 0
	for _, t := range ts {
		if t.AppID == appID {
			n++
		}
	}
	return n
}

func (l *Lab) waitSettled(a *api, timeout time.Duration) (view, error) {
	var v view
	err := waitFor(timeout, "settled cluster", func() error {
		var err error
		v, err = l.settled(a)
		return err
	})
	return v, err
}

// leaderRegion maps "198.18.2.10:8080" to region 2.
func leaderRegion(leader string) (Region, bool) {
	for _, r := range regions {
		if leader == fmt.Sprintf("%s:%d", host(r, "m").IP(), masterPort) {
			return r, true
		}
	}
	return Region{}, false
}

// others are the regions of rs other than x.
func others(rs []Region, x Region) []Region {
	var out []Region
	for _, r := range rs {
		if r != x {
			out = append(out, r)
		}
	}
	return out
}

// stateLost compares two views: an app gone or changed, and tasks of
// keep (tasks that nothing in the scenario touched) that are gone.
func stateLost(before, after view, keep func(Task) bool) []string {
	var lost []string
	for id, ap := range before.apps {
		now, ok := after.apps[id]
		switch {
		case !ok:
			lost = append(lost, "app "+id+" gone")
		case now.Instances != ap.Instances || now.Version != ap.Version:
			lost = append(lost, fmt.Sprintf("app %s changed: instances %d->%d version %s->%s", id, ap.Instances, now.Instances, ap.Version, now.Version))
		}
	}
	ids := map[string]bool{}
	for _, t := range after.tasks {
		ids[t.ID] = true
	}
	for _, t := range before.tasks {
		if keep(t) && !ids[t.ID] {
			lost = append(lost, "task "+t.ID+" gone")
		}
	}
	return lost
}

package master

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/master/scheduler"
)

const (
	reconcileEvery = 500 * time.Millisecond
	// killResend is how long a kill may go unanswered before it is sent again.
	killResend = 5 * time.Second
	// launchResend is how long a task may stay staging before its launch
	// is sent again; agents treat a repeated launch as done.
	launchResend     = 10 * time.Second
	requestTimeout   = 5 * time.Second
	defaultKillGrace = 3 * time.Second
	// DefaultTaskLaunchTimeout is Config.TaskLaunchTimeout's default,
	// Marathon's task_launch_timeout (300000 ms).
	DefaultTaskLaunchTimeout = 5 * time.Minute
	// DefaultKillDrainDelay is Config.KillDrainDelay's default: sidecars
	// apply a change in milliseconds, so a second is a wide margin.
	DefaultKillDrainDelay = time.Second
)

// maxLaunchesPerPass bounds the launches one pass stages, so that a
// 10,000-instance scale-up holds the lock in slices and heartbeats,
// status updates and API calls go on between them.
const maxLaunchesPerPass = 1000

// minPassGap is the least time between two reconcile passes.
const minPassGap = 5 * time.Millisecond

// reconcileLoop brings the cluster towards the state: on every kick, at
// least every reconcileEvery, and exactly when the next agent's heartbeat
// deadline or app timer passes, so an agent is unreachable within
// --agent-timeout.
func (m *Master) reconcileLoop(ctx context.Context) {
	timer := time.NewTimer(reconcileEvery)
	defer timer.Stop()
	full := time.NewTicker(fullPassEvery)
	defer full.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-m.kick:
		case <-full.C:
			m.mu.Lock()
			m.markAllDirtyLocked()
			m.mu.Unlock()
		}
		deadline := m.reconcileOnce()
		// Kicks that come while a pass runs are one pass, after a short
		// gap: a burst of status updates makes a few passes, each with
		// one batch to store, not one pass and one store write each.
		select {
		case <-ctx.Done():
			return
		case <-time.After(minPassGap):
		}
		wait := reconcileEvery
		if !deadline.IsZero() {
			wait = min(wait, max(deadline.Sub(m.cfg.Now()), time.Millisecond))
		}
		timer.Reset(wait)
	}
}

// reconcileOnce commits what the changed part of the state calls for,
// queues the requests to agents to go once that is durable, and returns
// the next deadline: an agent's heartbeat or an app's timer (zero if none).
func (m *Master) reconcileOnce() time.Time {
	start := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	defer func() { m.metrics.reconcile.Observe(time.Since(start).Seconds()) }()
	if !m.actingLocked() {
		return time.Time{}
	}
	defer m.passLocked()()
	now := m.cfg.Now()
	deadline := m.expireAgentsLocked(now)
	m.applyReportsLocked(now)

	apps, all, agents := m.takeDirtyLocked(now)
	if all || m.runtime.pool == nil {
		m.runtime.pool = scheduler.NewPool(m.state)
	} else {
		m.runtime.pool.Refresh(m.state, agents)
	}
	launched := 0
	for i, id := range apps {
		if launched >= maxLaunchesPerPass {
			// The rest next pass, at once.
			for _, rest := range apps[i:] {
				m.runtime.dirty.apps[rest] = struct{}{}
			}
			m.kickReconcile()
			break
		}
		app, ok := m.state.Apps[id]
		if !ok {
			m.reapAppLocked(id, now)
			continue
		}
		st, n := m.reconcileAppLocked(app, now, maxLaunchesPerPass-launched)
		launched += n
		m.runtime.appStatus[id] = st
		if st.waiting != "" && n == 0 {
			m.runtime.unplaced[id] = struct{}{}
		} else {
			delete(m.runtime.unplaced, id)
		}
	}
	m.killOrphansLocked(now)
	m.resendLocked(now)
	m.updateDeploymentsLocked(apps)
	if w := m.nextWakeLocked(); !w.IsZero() && (deadline.IsZero() || w.Before(deadline)) {
		deadline = w
	}
	return deadline
}

// reconcileAppLocked plans one app, stages up to limit new tasks and the
// kills, releases their requests, and returns the app's status and how
// many tasks it staged.
func (m *Master) reconcileAppLocked(app events.App, now time.Time, limit int) (st appStatus, launched int) {
	if why, held := m.heldByStepLocked(app.ID); held {
		return appStatus{waiting: why}, 0
	}
	if why, held := m.holdFailedLocked(app, now); held {
		return appStatus{waiting: why}, 0
	}
	m.unreachableLocked(app, now)
	p := planApp(m.state, app, now)
	for _, id := range p.Kill {
		m.killLocked(id, now)
	}
	if p.Launch == 0 {
		return appStatus{done: p.Done}, 0
	}
	if ok, until := m.runtime.launchAllowed(app.ID, now); !ok {
		m.wakeLocked(app.ID, until)
		return appStatus{waiting: m.delayedWhyLocked(app.ID, until)}, 0
	}
	want := min(p.Launch, limit)
	res := scheduler.PlaceIn(m.runtime.pool, m.state, app, want)
	tasks := make([]events.Task, 0, len(res.Placements))
	changes := make([]events.Change, 0, len(res.Placements))
	for _, pl := range res.Placements {
		t := newTask(app, pl, now)
		if ag, ok := m.state.Agents[pl.AgentID]; ok {
			// Marathon's task region and zone are its agent's fault
			// domain; atoll's are the agent's attributes of those names
			// (the ones @region and @zone constraints read).
			t.Region, t.Zone = ag.Attributes["region"], ag.Attributes["zone"]
		}
		tasks = append(tasks, t)
		changes = append(changes, events.PutTask(t))
	}
	// PlaceIn booked the placements on the pool as a refresh would count
	// their tasks: an agent that was up to date before them needs no
	// refresh for them. Refreshing the agents of a 1,000-launch pass cost
	// half the pass at 100,000 tasks, under the lock.
	booked := map[string]bool{}
	for _, pl := range res.Placements {
		if _, dirty := m.runtime.dirty.agents[pl.AgentID]; !dirty {
			booked[pl.AgentID] = true
		}
	}
	if err := m.commitLocked(changes...); err != nil {
		m.log.Warn("stage tasks", "app", app.ID, "tasks", len(changes), "err", err)
		for _, pl := range res.Placements { // booked on the pool, not staged
			m.runtime.dirty.agents[pl.AgentID] = struct{}{}
		}
		return appStatus{}, 0
	}
	for id := range booked {
		delete(m.runtime.dirty.agents, id)
	}
	for _, t := range tasks {
		m.launchLocked(app, t, now)
		m.metrics.launches.Inc()
	}
	if res.Unplaced > 0 {
		st.waiting = fmt.Sprintf("%d of %d instances cannot be placed: %s", res.Unplaced, p.Launch, res.Reason)
	}
	return st, len(tasks)
}

// newTask is a staging task for app at a placement.
func newTask(app events.App, pl scheduler.Placement, now time.Time) events.Task {
	proto := "IPv4"
	if strings.Contains(pl.IP, ":") {
		proto = "IPv6"
	}
	return events.Task{
		ID:            taskID(app.ID),
		AppID:         app.ID,
		AgentID:       pl.AgentID,
		Host:          pl.Host,
		IPAddresses:   []events.IPAddress{{IPAddress: pl.IP, Protocol: proto}},
		Ports:         pl.Ports,
		ServicePorts:  app.ServicePorts(),
		State:         events.TaskStaging,
		StagedAt:      now.UTC(),
		Version:       app.Version,
		ConfigVersion: app.VersionInfo.LastConfigChangeAt,
		Cpus:          app.Cpus,
		Mem:           app.Mem,
		Disk:          app.Disk,
	}
}

// killLocked marks a task killing and releases the request that kills it,
// when one is needed.
func (m *Master) killLocked(id string, now time.Time) {
	t, ok := m.state.Tasks[id]
	if !ok {
		return
	}
	if t.State == events.TaskUnreachable || t.State == events.TaskStaging && m.runtime.launchSent[id].IsZero() {
		// Nothing runs that we can reach: the task just ends.
		msg := "killed before it ran"
		if t.State == events.TaskUnreachable {
			msg = "killed while its agent was unreachable"
		}
		t.State, t.Message = events.TaskKilled, msg
		m.runtime.forgetTask(id)
		if err := m.commitLocked(events.PutTask(t)); err != nil {
			m.log.Warn("kill task", "task", id, "err", err)
		}
		return
	}
	if t.State != events.TaskKilling {
		if !m.beginKillingLocked(t, now) {
			return
		}
	}
	m.runtime.killSent[id] = now
	m.metrics.kills.Inc()
	grace := m.killGraceLocked(t.AppID)
	node := m.agentNodeLocked(t.AgentID)
	wait := time.Duration(0)
	if since, ok := m.runtime.draining[id]; ok {
		wait = m.cfg.KillDrainDelay - now.Sub(since)
	}
	m.releaseKillLocked(node, events.KillRequest{TaskID: id, KillGracePeriod: grace}, wait)
}

// beginKillingLocked commits t as TASK_KILLING. A task that was serving
// (RUNNING) starts draining: its kill is sent only after KillDrainDelay.
func (m *Master) beginKillingLocked(t events.Task, now time.Time) bool {
	serving := t.State == events.TaskRunning
	t.State, t.Message = events.TaskKilling, ""
	if err := m.commitLocked(events.PutTask(t)); err != nil {
		m.log.Warn("kill task", "task", t.ID, "err", err)
		return false
	}
	if serving && m.cfg.KillDrainDelay > 0 {
		m.runtime.draining[t.ID] = now
	}
	return true
}

func (m *Master) killGraceLocked(appID string) time.Duration {
	if app, ok := m.state.Apps[appID]; ok && app.TaskKillGracePeriodSeconds > 0 {
		return time.Duration(app.TaskKillGracePeriodSeconds * float64(time.Second))
	}
	return defaultKillGrace
}

// reapAppLocked kills the tasks of an app that no longer exists.
func (m *Master) reapAppLocked(appID string, now time.Time) {
	for _, t := range m.state.TasksOf(appID) {
		if t.State == events.TaskKilling {
			continue
		}
		m.killLocked(t.ID, now)
	}
	if m.state.CountTasksOf(appID) == 0 {
		delete(m.runtime.appStatus, appID)
		delete(m.runtime.unplaced, appID)
	}
}

// killOrphansLocked kills the tasks agents run that the state does not
// hold.
func (m *Master) killOrphansLocked(now time.Time) {
	for taskID, at := range m.runtime.killSent {
		if _, ok := m.state.Tasks[taskID]; !ok && now.Sub(at) > time.Minute {
			delete(m.runtime.killSent, taskID)
		}
	}
	for taskID, agentID := range m.runtime.orphans {
		delete(m.runtime.orphans, taskID)
		m.runtime.killSent[taskID] = now
		m.releaseKillLocked(m.agentNodeLocked(agentID), events.KillRequest{TaskID: taskID, KillGracePeriod: defaultKillGrace}, 0)
	}
}

// resendLocked repeats launches and kills that went unanswered, and ends
// launches that timed out (Marathon's task_launch_timeout): such a task
// is killed, never adopted as well, and counts as a failure of its app.
// It looks only at the tasks in flight.
func (m *Master) resendLocked(now time.Time) {
	for _, id := range sortedIDs(m.runtime.killing) {
		if t, ok := m.state.Tasks[id]; !ok || t.State != events.TaskKilling {
			delete(m.runtime.killing, id) // taken back with a failed store write
			continue
		}
		if now.Sub(m.runtime.killSent[id]) >= killResend {
			m.killLocked(id, now)
		}
	}
	for _, id := range sortedIDs(m.runtime.staging) {
		t, ok := m.state.Tasks[id]
		if !ok {
			delete(m.runtime.staging, id)
			continue
		}
		if now.Sub(t.StagedAt) > m.cfg.TaskLaunchTimeout {
			m.metrics.launchTimeouts.Inc()
			if app, ok := m.state.Apps[t.AppID]; ok {
				m.runtime.failed(app, now)
			}
			m.log.Warn("task launch timed out; killing it", "task", id, "agent", t.AgentID, "staged", now.Sub(t.StagedAt).Round(time.Second))
			delete(m.runtime.killSent, id)
			m.killLocked(id, now)
			continue
		}
		if now.Sub(m.runtime.launchSent[id]) >= launchResend {
			if app, ok := m.state.Apps[t.AppID]; ok {
				m.launchLocked(app, t, now)
			}
		}
	}
}

func sortedIDs(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// launchLocked records the launch and releases the request that sends it.
func (m *Master) launchLocked(app events.App, t events.Task, now time.Time) {
	m.runtime.launchSent[t.ID] = now
	m.releaseLaunchLocked(m.agentNodeLocked(t.AgentID), events.LaunchRequest{
		Task:            t,
		Cmd:             app.Cmd,
		Args:            app.Args,
		User:            app.User,
		Env:             taskEnv(app, t, m.state.Agents[t.AgentID]),
		KillGracePeriod: m.killGraceLocked(app.ID),
		HealthChecks:    app.HealthChecks,
		Limits:          &events.TaskLimits{Cpus: app.Cpus, Mem: app.Mem},
		Fetch:           app.Fetch,
		Readiness:       readinessProbe(app, t),
		Container:       containerLaunch(app, t), // launch_container.go
	})
}

// delayedWhyLocked says why an app's launches wait: its backoff after
// task failures, and what the last failure said (a bad image, a missing
// runtime), so that the deployment shows the cause, not only the delay.
func (m *Master) delayedWhyLocked(appID string, until time.Time) string {
	why := fmt.Sprintf("delayed after task failures until %s", until.UTC().Format(time.RFC3339))
	if f, ok := m.state.AppFailures[appID]; ok && f.Task.Message != "" {
		why += "; last failure: " + string(f.Task.State) + ": " + f.Task.Message
	}
	return why
}

package master

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

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
	now := m.cfg.Now()
	deadline := m.expireAgentsLocked(now)
	m.applyReportsLocked(now)

	apps, all, agents := m.takeDirtyLocked(now)
	if all || m.runtime.pool == nil {
		m.runtime.pool = scheduler.NewPool(m.state)
	} else {
		m.runtime.pool.Refresh(m.state, agents)
	}
	var sends []func(context.Context)
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
			sends = append(sends, m.reapAppLocked(id, now)...)
			continue
		}
		s, st, n := m.reconcileAppLocked(app, now, maxLaunchesPerPass-launched)
		sends = append(sends, s...)
		launched += n
		m.runtime.appStatus[id] = st
		if st.waiting != "" && n == 0 {
			m.runtime.unplaced[id] = struct{}{}
		} else {
			delete(m.runtime.unplaced, id)
		}
	}
	sends = append(sends, m.killOrphansLocked(now)...)
	sends = append(sends, m.resendLocked(now)...)
	m.updateDeploymentsLocked(apps)
	m.afterDurableLocked(sends...)
	if w := m.nextWakeLocked(); !w.IsZero() && (deadline.IsZero() || w.Before(deadline)) {
		deadline = w
	}
	return deadline
}

// reconcileAppLocked plans one app, stages up to limit new tasks and the
// kills, and returns the requests to send, the app's status and how many
// tasks it staged.
func (m *Master) reconcileAppLocked(app events.App, now time.Time, limit int) (sends []func(context.Context), st appStatus, launched int) {
	if sends, why, held := m.holdFailedLocked(app, now); held {
		return sends, appStatus{waiting: why}, 0
	}
	p := planApp(m.state, app)
	for _, id := range p.Kill {
		if s := m.killLocked(id, now); s != nil {
			sends = append(sends, s)
		}
	}
	if p.Launch == 0 {
		return sends, appStatus{done: p.Done}, 0
	}
	if ok, until := m.runtime.launchAllowed(app.ID, now); !ok {
		m.wakeLocked(app.ID, until)
		return sends, appStatus{waiting: fmt.Sprintf("delayed after task failures until %s", until.UTC().Format(time.RFC3339))}, 0
	}
	want := min(p.Launch, limit)
	res := scheduler.PlaceIn(m.runtime.pool, m.state, app, want)
	tasks := make([]events.Task, 0, len(res.Placements))
	changes := make([]events.Change, 0, len(res.Placements))
	for _, pl := range res.Placements {
		t := newTask(app, pl, now)
		tasks = append(tasks, t)
		changes = append(changes, events.PutTask(t))
	}
	if err := m.commitLocked(changes...); err != nil {
		m.log.Warn("stage tasks", "app", app.ID, "tasks", len(changes), "err", err)
		return sends, appStatus{}, 0
	}
	for _, t := range tasks {
		sends = append(sends, m.launchLocked(app, t, now))
		m.metrics.launches.Inc()
	}
	if res.Unplaced > 0 {
		st.waiting = fmt.Sprintf("%d of %d instances cannot be placed: %s", res.Unplaced, p.Launch, res.Reason)
	}
	return sends, st, len(tasks)
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

// killLocked marks a task killing and returns the request that kills it,
// or nil when no request is needed.
func (m *Master) killLocked(id string, now time.Time) func(context.Context) {
	t, ok := m.state.Tasks[id]
	if !ok {
		return nil
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
		return nil
	}
	if t.State != events.TaskKilling {
		if !m.beginKillingLocked(t, now) {
			return nil
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
	return func(ctx context.Context) {
		if wait > 0 {
			timer := time.NewTimer(wait)
			defer timer.Stop()
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		m.sendKill(ctx, node, id, grace)
	}
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
func (m *Master) reapAppLocked(appID string, now time.Time) []func(context.Context) {
	var sends []func(context.Context)
	for _, t := range m.state.TasksOf(appID) {
		if t.State == events.TaskKilling {
			continue
		}
		if s := m.killLocked(t.ID, now); s != nil {
			sends = append(sends, s)
		}
	}
	if m.state.CountTasksOf(appID) == 0 {
		delete(m.runtime.appStatus, appID)
		delete(m.runtime.unplaced, appID)
	}
	return sends
}

// killOrphansLocked kills the tasks agents run that the state does not
// hold.
func (m *Master) killOrphansLocked(now time.Time) []func(context.Context) {
	var sends []func(context.Context)
	for taskID, at := range m.runtime.killSent {
		if _, ok := m.state.Tasks[taskID]; !ok && now.Sub(at) > time.Minute {
			delete(m.runtime.killSent, taskID)
		}
	}
	for taskID, agentID := range m.runtime.orphans {
		delete(m.runtime.orphans, taskID)
		m.runtime.killSent[taskID] = now
		node := m.agentNodeLocked(agentID)
		sends = append(sends, func(ctx context.Context) { m.sendKill(ctx, node, taskID, defaultKillGrace) })
	}
	return sends
}

// resendLocked repeats launches and kills that went unanswered, and ends
// launches that timed out (Marathon's task_launch_timeout): such a task
// is killed, never adopted as well, and counts as a failure of its app.
// It looks only at the tasks in flight.
func (m *Master) resendLocked(now time.Time) []func(context.Context) {
	var sends []func(context.Context)
	for _, id := range sortedIDs(m.runtime.killing) {
		if t, ok := m.state.Tasks[id]; !ok || t.State != events.TaskKilling {
			delete(m.runtime.killing, id) // taken back with a failed store write
			continue
		}
		if now.Sub(m.runtime.killSent[id]) >= killResend {
			if s := m.killLocked(id, now); s != nil {
				sends = append(sends, s)
			}
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
			if s := m.killLocked(id, now); s != nil {
				sends = append(sends, s)
			}
			continue
		}
		if now.Sub(m.runtime.launchSent[id]) >= launchResend {
			if app, ok := m.state.Apps[t.AppID]; ok {
				sends = append(sends, m.launchLocked(app, t, now))
			}
		}
	}
	return sends
}

func sortedIDs(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// launchLocked records the launch and returns the request that sends it.
func (m *Master) launchLocked(app events.App, t events.Task, now time.Time) func(context.Context) {
	m.runtime.launchSent[t.ID] = now
	req := events.LaunchRequest{
		Task:            t,
		Cmd:             app.Cmd,
		Args:            app.Args,
		User:            app.User,
		Env:             taskEnv(app, t, m.state.Agents[t.AgentID]),
		KillGracePeriod: m.killGraceLocked(app.ID),
		HealthChecks:    app.HealthChecks,
	}
	node := m.agentNodeLocked(t.AgentID)
	return func(ctx context.Context) { m.sendLaunch(ctx, node, req) }
}

// sendLaunch asks the agent to start the task; a refusal fails the task.
func (m *Master) sendLaunch(ctx context.Context, node string, req events.LaunchRequest) {
	data, err := json.Marshal(req)
	if err != nil {
		m.log.Error("encode launch", "task", req.Task.ID, "err", err)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	msg, err := m.cfg.NC.RequestWithContext(rctx, m.cfg.Subjects.Launch(node), data)
	if errors.Is(err, nats.ErrNoResponders) {
		// The agent has registered but not yet subscribed (its first
		// registration reply is still on its way): try again at the
		// next reconcile pass rather than after launchResend.
		m.mu.Lock()
		delete(m.runtime.launchSent, req.Task.ID)
		m.mu.Unlock()
		m.kickReconcile()
		m.log.Debug("launch: agent not listening yet", "task", req.Task.ID, "agent", req.Task.AgentID)
		return
	}
	if err != nil {
		// Resent later, or lost once staging times out.
		m.log.Warn("launch not answered", "task", req.Task.ID, "agent", req.Task.AgentID, "err", err)
		return
	}
	var ack events.Ack
	if err := json.Unmarshal(msg.Data, &ack); err != nil {
		ack.Error = "bad reply: " + err.Error()
	}
	if ack.Error == "" || ack.Code == events.AckTaskExists {
		m.live.launchAcked(req.Task.ID, m.cfg.Now())
		return
	}
	m.log.Warn("launch refused", "task", req.Task.ID, "agent", req.Task.AgentID, "err", ack.Error)
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.state.Tasks[req.Task.ID]; ok && t.State == events.TaskStaging {
		changes := m.taskStatusLocked(t, events.TaskFailed, "launch refused: "+ack.Error, nil, m.cfg.Now())
		if err := m.commitLocked(changes...); err != nil {
			m.log.Warn("fail refused task", "task", t.ID, "err", err)
		}
	}
}

// sendKill asks the agent on node to kill a task. An agent that does not
// know the task has nothing to kill: the task is over.
func (m *Master) sendKill(ctx context.Context, node, taskID string, grace time.Duration) {
	data, _ := json.Marshal(events.KillRequest{TaskID: taskID, KillGracePeriod: grace})
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	msg, err := m.cfg.NC.RequestWithContext(rctx, m.cfg.Subjects.Kill(node), data)
	if err != nil {
		m.log.Warn("kill not answered", "task", taskID, "node", node, "err", err)
		return
	}
	var ack events.Ack
	if err := json.Unmarshal(msg.Data, &ack); err != nil || ack.Code != events.AckUnknownTask {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.state.Tasks[taskID]; ok && t.State == events.TaskKilling {
		changes := m.taskStatusLocked(t, events.TaskKilled, "agent no longer runs the task", nil, m.cfg.Now())
		if err := m.commitLocked(changes...); err != nil {
			m.log.Warn("end killed task", "task", taskID, "err", err)
		}
	}
}

package agent

import (
	"context"
	"time"

	"github.com/atollhq/atoll/agent/health"
	"github.com/atollhq/atoll/events"
)

// startHealthLocked starts the task's health checks, if its launch request
// has any, in a goroutine the task owns: stopHealthLocked (on kill, on
// exit) or the end of the agent's watchers stops it. a.mu held.
func (a *Agent) startHealthLocked(t *task) {
	if len(t.launch.HealthChecks) == 0 || t.killing || t.exited || t.stopHealth != nil {
		return
	}
	dir := a.taskDir(t.id)
	env, _ := a.taskEnv(t.launch, dir)
	r := &health.Runner{
		TaskID: t.id,
		Checks: t.launch.HealthChecks,
		Target: health.Target{
			// The advertised IP is the task's HOST: where it serves
			// the ports DNS and HAProxy send traffic to.
			Host:       a.cfg.AdvertiseIP,
			Ports:      t.launch.Task.Ports,
			Env:        env,
			Dir:        dir,
			Credential: a.users.credential(t.runAs),
		},
		Started: t.startedAt,
		Report:  func(rep health.Report) { a.reportHealth(t, rep) },
		Log:     a.log,
	}
	if t.launch.Container != nil && a.ctrs.runtimeErr == nil {
		rt, id := a.ctrs.driver.Runtime, t.id
		r.Target.Exec = func(ctx context.Context, argv []string) (int, error) {
			code, _, err := rt.Exec(ctx, id, argv)
			return code, err
		}
	}
	ctx, cancel := context.WithCancel(a.wctx)
	done := make(chan struct{})
	t.stopHealth, t.healthDone = cancel, done
	a.goRun(func() {
		defer close(done)
		defer cancel()
		r.Run(ctx)
	})
}

// stopHealthLocked stops the task's health checks, if any run; it does
// not wait for them (healthDone says when they are gone). a.mu held.
func (t *task) stopHealthLocked() {
	if t.stopHealth != nil {
		t.stopHealth()
	}
}

// reportHealth sends the master a task's health, as a TASK_RUNNING status
// update with Healthy and all check results. The agent never kills on
// health: the master decides, on LimitReached, to replace the task.
func (a *Agent) reportHealth(t *task, rep health.Report) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// A report racing a kill or the exit: the task's own final updates
	// say what matters now.
	if t.killing || t.exited || t.state != events.TaskRunning || a.tasks[t.id] != t {
		return
	}
	var ready *bool
	if t.ready {
		yes := true
		ready = &yes
	}
	a.status.pushHealth(statusItem{
		upd: events.StatusUpdate{
			TaskID: t.id, State: events.TaskRunning, Healthy: rep.Healthy, Ready: ready,
			HealthCheckResults: rep.Results, Time: time.Now().UTC(),
		},
		// The update that hits the limit must reach the master, or the
		// task would never be replaced; later health may follow it but
		// not replace it.
		replaceable: !rep.LimitReached,
	})
}

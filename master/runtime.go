package master

import (
	"math"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/master/scheduler"
)

// runtime is the leader's in-memory bookkeeping: facts that are not cluster
// state (nobody else needs them, and a new leader rebuilds them). It is
// guarded by Master.mu.
type runtime struct {
	// launchSent and killSent record when a launch or kill request last
	// went to an agent, so reconcile passes neither repeat nor forget them.
	launchSent map[string]time.Time
	killSent   map[string]time.Time
	// draining holds, per task, when a task that was serving became
	// TASK_KILLING: its kill waits out Config.KillDrainDelay from then.
	draining map[string]time.Time
	// orphans are tasks that agents run but the state does not hold,
	// by task id, with their agent: the next reconcile pass kills them.
	orphans map[string]string
	// backoff is the launch delay per app, after failed tasks.
	backoff map[string]*launchDelay
	// deployFailures counts, per app, the tasks of its current config that
	// failed since a deployment began or one of them last became ready.
	deployFailures map[string]int

	// dirty is what the next reconcile pass looks at (dirty.go).
	dirty dirtySet
	// staging and killing are the tasks in flight, whose launch or kill
	// may need sending again: a pass looks at these, not at every task.
	staging, killing map[string]struct{}
	// appStatus is each app's outcome at its last reconcile, for its
	// deployments.
	appStatus map[string]appStatus
	// unplaced are the apps that could not place every instance: an
	// agent that joins or frees resources wakes them.
	unplaced map[string]struct{}
	// wake is when an app needs a pass with nothing else changing: its
	// launch delay ends, a drain delay runs out.
	wake map[string]time.Time
	// pool is the scheduler's view of free resources, refreshed per
	// agent as its tasks change; nil until the first pass.
	pool *scheduler.Pool
	// servicePorts counts the service ports of the apps of portsOf (the
	// working state), kept up to date as apps change; nil until an app
	// needs ports assigned, and again after changes were taken back.
	servicePorts *scheduler.ServicePorts
	portsOf      *events.State
	// groupAppRefs are the app definitions group versions refer to
	// (groupversions.go); nil until needed, and again after group
	// versions changed or changes were taken back.
	groupAppRefs map[events.Ref]bool
}

// appStatus is an app's outcome at its last reconcile pass.
type appStatus struct {
	waiting string // why it waits, for its deployment; empty if it does not
	done    bool   // converged
}

func newRuntime() *runtime {
	return &runtime{
		launchSent: map[string]time.Time{},
		killSent:   map[string]time.Time{},
		draining:   map[string]time.Time{},
		orphans:    map[string]string{},
		backoff:    map[string]*launchDelay{},

		deployFailures: map[string]int{},
		dirty:          newDirtySet(),
		staging:        map[string]struct{}{},
		killing:        map[string]struct{}{},
		appStatus:      map[string]appStatus{},
		unplaced:       map[string]struct{}{},
		wake:           map[string]time.Time{},
	}
}

// launchDelay is Marathon's backoff: after the n-th failure in a row the
// next launch waits backoffSeconds * backoffFactor^(n-1), at most
// maxLaunchDelaySeconds.
type launchDelay struct {
	failures int
	until    time.Time
}

// delayFor returns the delay after the given number of failures.
func delayFor(app events.App, failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	secs := app.BackoffSeconds * math.Pow(app.BackoffFactor, float64(failures-1))
	if app.MaxLaunchDelaySeconds > 0 && secs > app.MaxLaunchDelaySeconds {
		secs = app.MaxLaunchDelaySeconds
	}
	return time.Duration(secs * float64(time.Second))
}

// failed records a task failure of the app at now.
func (r *runtime) failed(app events.App, now time.Time) time.Time {
	d := r.backoff[app.ID]
	if d == nil {
		d = &launchDelay{}
		r.backoff[app.ID] = d
	}
	// Failures long after the last delay ran out start a new series.
	if window := time.Duration(app.MaxLaunchDelaySeconds * float64(time.Second)); d.failures > 0 && now.Sub(d.until) > window {
		d.failures = 0
	}
	d.failures++
	d.until = now.Add(delayFor(app, d.failures))
	return d.until
}

// launchAllowed reports whether the app may launch at now, and if not, until when it waits.
func (r *runtime) launchAllowed(appID string, now time.Time) (bool, time.Time) {
	d := r.backoff[appID]
	if d == nil || !now.Before(d.until) {
		return true, time.Time{}
	}
	return false, d.until
}

// resetBackoff forgets an app's failures: a new config deserves a fresh start.
func (r *runtime) resetBackoff(appID string) { delete(r.backoff, appID) }

// forgetTask drops bookkeeping for a task that left the state.
func (r *runtime) forgetTask(id string) {
	delete(r.launchSent, id)
	delete(r.killSent, id)
	delete(r.draining, id)
}

package health

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/atollhq/atoll/events"
)

// Report is what a Runner hands its owner when the master must hear of a
// task's health.
type Report struct {
	// Healthy is the overall verdict (see Healthy); nil while not known.
	Healthy *bool
	// Results holds one record per check, in the order of the checks.
	Results []events.HealthCheckResult
	// LimitReached says a check just reached maxConsecutiveFailures: the
	// master replaces the task.
	LimitReached bool
}

// Runner runs the checks of one task, each on its own interval, until the
// context given to Run ends. Its owner (the task) ends that context when
// the task is killed or ends.
type Runner struct {
	TaskID string
	Checks []events.HealthCheck
	Target Target
	// Started is when the task started running: grace periods count from
	// it, also for a task re-adopted after an agent restart.
	Started time.Time
	// Report is called, one call at a time and in order, when a result
	// changes what the master knows (Tracker.Record). It must not block
	// for long and must not call back into the Runner.
	Report func(Report)
	Log    *slog.Logger

	// second is how long one second of the check definitions lasts;
	// tests shorten it.
	second time.Duration

	mu       sync.Mutex
	trackers []*Tracker
}

// Floors for definitions the master lets through (Marathon allows 0): a
// check every zero seconds would spin, one with no time would always fail.
const (
	minIntervalSeconds = 1
	minTimeoutSeconds  = 1
)

// Run runs every check until ctx ends, then returns once all probes have
// stopped. A Runner runs once.
func (r *Runner) Run(ctx context.Context) {
	if r.second <= 0 {
		r.second = time.Second
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	r.mu.Lock()
	r.trackers = make([]*Tracker, len(r.Checks))
	for i, hc := range r.Checks {
		grace := time.Duration(max(hc.GracePeriodSeconds, 0)) * r.second
		r.trackers[i] = NewTracker(r.TaskID, hc.MaxConsecutiveFailures, r.Started.Add(grace))
	}
	r.mu.Unlock()

	var wg sync.WaitGroup
	for i := range r.Checks {
		wg.Go(func() { r.loop(ctx, i) })
	}
	wg.Wait()
}

// loop runs check i: first after delaySeconds, then every intervalSeconds
// (a probe that overruns its interval skips the ticks it missed).
func (r *Runner) loop(ctx context.Context, i int) {
	hc := r.Checks[i]
	delay := time.Duration(max(hc.DelaySeconds, 0)) * r.second
	interval := time.Duration(max(hc.IntervalSeconds, minIntervalSeconds)) * r.second
	timeout := time.Duration(max(hc.TimeoutSeconds, minTimeoutSeconds)) * r.second

	first := time.NewTimer(delay)
	defer first.Stop()
	select {
	case <-ctx.Done():
		return
	case <-first.C:
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		outcome := Probe(ctx, hc, r.Target, timeout)
		if ctx.Err() != nil {
			return // stopped mid-probe: not a result
		}
		r.record(ctx, i, outcome)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// record folds a probe's outcome into check i's record and reports if it
// matters. Under r.mu, so that reports leave in the order of results.
func (r *Runner) record(ctx context.Context, i int, outcome error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tr := r.trackers[i]
	if !tr.Record(time.Now().UTC(), outcome) {
		if outcome != nil {
			r.Log.Debug("health check failed", "task", r.TaskID, "check", i, "cause", outcome)
		}
		return
	}
	rep := Report{Results: make([]events.HealthCheckResult, len(r.trackers)), LimitReached: tr.LimitReached()}
	for j, t := range r.trackers {
		rep.Results[j] = t.Result()
	}
	rep.Healthy = Healthy(rep.Results)
	if ctx.Err() != nil {
		return // the owner stopped us: it wants no more reports
	}
	res := rep.Results[i]
	args := []any{"task", r.TaskID, "check", i, "alive", res.Alive, "healthy", fmtHealthy(rep.Healthy)}
	if !res.Alive {
		args = append(args, "consecutiveFailures", res.ConsecutiveFailures, "cause", res.LastFailureCause)
	}
	r.Log.Info("task health changed", args...)
	r.Report(rep)
}

func fmtHealthy(h *bool) string {
	switch {
	case h == nil:
		return "unknown"
	case *h:
		return "true"
	}
	return "false"
}

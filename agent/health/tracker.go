package health

import (
	"errors"
	"time"

	"github.com/atollhq/atoll/events"
)

// Tracker folds the results of one check of one task into Marathon's
// record of it. It is pure: time comes in with each result.
type Tracker struct {
	maxFailures int       // maxConsecutiveFailures; 0 never gives up
	graceEnds   time.Time // task start + gracePeriodSeconds
	res         events.HealthCheckResult
}

// NewTracker starts the record of a check with the given
// maxConsecutiveFailures whose grace period ends at graceEnds.
func NewTracker(taskID string, maxFailures int, graceEnds time.Time) *Tracker {
	return &Tracker{maxFailures: maxFailures, graceEnds: graceEnds, res: events.HealthCheckResult{TaskID: taskID}}
}

// Result is the record so far. Its times are copies.
func (t *Tracker) Result() events.HealthCheckResult {
	r := t.res
	r.FirstSuccess, r.LastSuccess, r.LastFailure = clone(r.FirstSuccess), clone(r.LastSuccess), clone(r.LastFailure)
	return r
}

// Record folds in the outcome of one probe at now (nil: healthy, as
// Probe returns). It reports whether the master must hear of it: the
// check's verdict changed (unknown, alive, dead), or its consecutive
// failures just reached maxConsecutiveFailures.
//
// As in Marathon, a failure within the grace period before the first
// success does not count at all, and an ignored result changes nothing.
func (t *Tracker) Record(now time.Time, outcome error) (report bool) {
	if errors.Is(outcome, ErrIgnored) {
		return false
	}
	if outcome != nil && t.res.FirstSuccess == nil && now.Before(t.graceEnds) {
		return false
	}
	before := verdictOf(t.res)
	at := now
	if outcome == nil {
		if t.res.FirstSuccess == nil {
			t.res.FirstSuccess = &at
		}
		t.res.LastSuccess = &at
		t.res.ConsecutiveFailures = 0
		t.res.Alive = true
	} else {
		t.res.LastFailure = &at
		t.res.LastFailureCause = outcome.Error()
		t.res.ConsecutiveFailures++
		t.res.Alive = false
	}
	return verdictOf(t.res) != before || t.LimitReached()
}

// LimitReached says the last result was the failure that brought the
// check to maxConsecutiveFailures: the moment Marathon replaces the task.
func (t *Tracker) LimitReached() bool {
	return t.maxFailures > 0 && !t.res.Alive && t.res.ConsecutiveFailures == t.maxFailures
}

// verdict is a check's standing: unknown until a result counts.
type verdict int8

const (
	unknown verdict = iota
	alive
	dead
)

func verdictOf(r events.HealthCheckResult) verdict {
	switch {
	case r.LastSuccess == nil && r.LastFailure == nil:
		return unknown
	case r.Alive:
		return alive
	}
	return dead
}

// Healthy is a task's overall verdict over the records of all its checks:
// true when every check is alive, false as soon as one counted check is
// not, nil (not known yet) otherwise.
func Healthy(results []events.HealthCheckResult) *bool {
	all := len(results) > 0
	for _, r := range results {
		switch verdictOf(r) {
		case dead:
			f := false
			return &f
		case unknown:
			all = false
		}
	}
	if !all {
		return nil
	}
	t := true
	return &t
}

func clone(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

package health

import (
	"errors"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// step is one probe outcome fed to a Tracker, and what must follow.
type step struct {
	at     int  // seconds after the task started
	ok     bool // the probe's outcome
	ignore bool // the probe's outcome is ErrIgnored

	report   bool
	alive    bool
	failures int
	healthy  string // Healthy over this one check: "", "true", "false"
}

func TestTracker(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name  string
		max   int
		grace int
		steps []step
	}{
		{name: "healthy from the start", max: 3, grace: 0, steps: []step{
			{at: 0, ok: true, report: true, alive: true, healthy: "true"},
			{at: 1, ok: true, alive: true, healthy: "true"},
		}},
		{name: "failures within grace before any success do not count", max: 3, grace: 10, steps: []step{
			{at: 1, healthy: ""},
			{at: 5, healthy: ""},
			{at: 9, healthy: ""},
			{at: 10, report: true, failures: 1, healthy: "false"}, // grace over
			{at: 11, ok: true, report: true, alive: true, healthy: "true"},
		}},
		{name: "after a first success, failures count even within grace", max: 3, grace: 100, steps: []step{
			{at: 1, ok: true, report: true, alive: true, healthy: "true"},
			{at: 2, report: true, failures: 1, healthy: "false"},
			{at: 3, failures: 2, healthy: "false"},
		}},
		{name: "consecutive failures reach the limit once", max: 3, steps: []step{
			{at: 0, ok: true, report: true, alive: true, healthy: "true"},
			{at: 1, report: true, failures: 1, healthy: "false"},
			{at: 2, failures: 2, healthy: "false"},
			{at: 3, report: true, failures: 3, healthy: "false"}, // the limit
			{at: 4, failures: 4, healthy: "false"},
			{at: 5, ok: true, report: true, alive: true, healthy: "true"},
			{at: 6, report: true, failures: 1, healthy: "false"},
		}},
		{name: "limit 1 reports the first failure once", max: 1, steps: []step{
			{at: 0, report: true, failures: 1, healthy: "false"},
			{at: 1, failures: 2, healthy: "false"},
		}},
		{name: "maxConsecutiveFailures 0 never reaches a limit", max: 0, steps: []step{
			{at: 0, report: true, failures: 1, healthy: "false"},
			{at: 1, failures: 2, healthy: "false"},
			{at: 2, failures: 3, healthy: "false"},
			{at: 3, failures: 4, healthy: "false"},
		}},
		{name: "flips both ways", max: 10, steps: []step{
			{at: 0, ok: true, report: true, alive: true, healthy: "true"},
			{at: 1, report: true, failures: 1, healthy: "false"},
			{at: 2, ok: true, report: true, alive: true, healthy: "true"},
			{at: 3, report: true, failures: 1, healthy: "false"},
		}},
		{name: "ignored results change nothing", max: 2, grace: 0, steps: []step{
			{at: 0, ignore: true, healthy: ""},
			{at: 1, ok: true, report: true, alive: true, healthy: "true"},
			{at: 2, ignore: true, alive: true, healthy: "true"},
			{at: 3, report: true, failures: 1, healthy: "false"},
			{at: 4, ignore: true, failures: 1, healthy: "false"},
			{at: 5, report: true, failures: 2, healthy: "false"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := NewTracker("web.1", c.max, start.Add(time.Duration(c.grace)*time.Second))
			var lastFailure, firstSuccess *time.Time
			for i, s := range c.steps {
				now := start.Add(time.Duration(s.at) * time.Second)
				var outcome error
				switch {
				case s.ignore:
					outcome = ErrIgnored
				case !s.ok:
					outcome = errors.New("boom " + now.Format(time.TimeOnly))
				}
				got := tr.Record(now, outcome)
				r := tr.Result()
				if got != s.report || r.Alive != s.alive || r.ConsecutiveFailures != s.failures {
					t.Fatalf("step %d (t+%ds): report %v alive %v failures %d, want %v %v %d",
						i, s.at, got, r.Alive, r.ConsecutiveFailures, s.report, s.alive, s.failures)
				}
				if h := fmtBool(Healthy([]events.HealthCheckResult{r})); h != s.healthy {
					t.Fatalf("step %d: Healthy = %q, want %q", i, h, s.healthy)
				}
				if r.TaskID != "web.1" {
					t.Fatalf("step %d: task id %q", i, r.TaskID)
				}
				counted := !s.ignore && (s.ok || r.LastFailure != nil && r.LastFailure.Equal(now))
				if counted && s.ok {
					if r.LastSuccess == nil || !r.LastSuccess.Equal(now) {
						t.Fatalf("step %d: lastSuccess %v, want %v", i, r.LastSuccess, now)
					}
					if firstSuccess == nil {
						firstSuccess = clone(&now)
					}
				}
				if counted && !s.ok {
					lastFailure = clone(&now)
					if r.LastFailureCause != outcome.Error() {
						t.Fatalf("step %d: cause %q, want %q", i, r.LastFailureCause, outcome.Error())
					}
				}
				if !sameTime(r.FirstSuccess, firstSuccess) || !sameTime(r.LastFailure, lastFailure) {
					t.Fatalf("step %d: firstSuccess %v lastFailure %v, want %v %v", i, r.FirstSuccess, r.LastFailure, firstSuccess, lastFailure)
				}
			}
		})
	}
}

func TestTrackerResultIsACopy(t *testing.T) {
	tr := NewTracker("web.1", 3, time.Time{})
	now := time.Now()
	tr.Record(now, nil)
	r := tr.Result()
	*r.LastSuccess = now.Add(time.Hour)
	if !tr.Result().LastSuccess.Equal(now) {
		t.Fatal("Result shares its times with the tracker")
	}
}

func TestHealthy(t *testing.T) {
	at := time.Now()
	unknown := events.HealthCheckResult{}
	alive := events.HealthCheckResult{Alive: true, LastSuccess: &at}
	dead := events.HealthCheckResult{LastFailure: &at, ConsecutiveFailures: 1}
	cases := []struct {
		results []events.HealthCheckResult
		want    string
	}{
		{nil, ""},
		{[]events.HealthCheckResult{unknown}, ""},
		{[]events.HealthCheckResult{alive}, "true"},
		{[]events.HealthCheckResult{dead}, "false"},
		{[]events.HealthCheckResult{alive, alive}, "true"},
		{[]events.HealthCheckResult{alive, unknown}, ""},
		{[]events.HealthCheckResult{unknown, dead}, "false"},
		{[]events.HealthCheckResult{alive, dead}, "false"},
	}
	for i, c := range cases {
		if got := fmtBool(Healthy(c.results)); got != c.want {
			t.Errorf("case %d: Healthy = %q, want %q", i, got, c.want)
		}
	}
}

func fmtBool(b *bool) string {
	switch {
	case b == nil:
		return ""
	case *b:
		return "true"
	}
	return "false"
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

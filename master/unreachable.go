package master

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/atollhq/atoll/events"
)

// Marathon's unreachableStrategy: a task whose agent went silent
// (TASK_UNREACHABLE) keeps its place for inactiveAfterSeconds, and is
// replaced after that; after expungeAfterSeconds it is forgotten, and
// killed should its agent come back with it. An app without one is
// atoll's default: replaced at once, kept until its agent returns (then
// the surplus goes, youngest first). "disabled" neither replaces nor
// forgets.

// inactive says whether unreachable task t no longer keeps its place.
func inactive(app events.App, t events.Task, now time.Time) bool {
	us := app.UnreachableStrategy
	switch {
	case us == nil:
		return true
	case us.Disabled:
		return false
	case t.UnreachableSince == nil:
		return true
	}
	return !now.Before(t.UnreachableSince.Add(seconds(us.InactiveAfterSeconds)))
}

// expunged says whether unreachable task t is to be forgotten.
func expunged(app events.App, t events.Task, now time.Time) bool {
	us := app.UnreachableStrategy
	if us == nil || us.Disabled || t.UnreachableSince == nil {
		return false
	}
	return !now.Before(t.UnreachableSince.Add(seconds(us.ExpungeAfterSeconds)))
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// unreachableLocked forgets the app's unreachable tasks whose expunge time
// has come, and has the reconcile loop come back at the next deadline of
// the others.
func (m *Master) unreachableLocked(app events.App, now time.Time) {
	us := app.UnreachableStrategy
	if us == nil || us.Disabled {
		return
	}
	var changes []events.Change
	for _, t := range m.state.TasksOf(app.ID) {
		if t.State != events.TaskUnreachable || t.UnreachableSince == nil {
			continue
		}
		if expunged(app, t, now) {
			t.State = events.TaskGone
			t.Message = fmt.Sprintf("expunged: unreachable for %s (unreachableStrategy.expungeAfterSeconds %g)",
				now.Sub(*t.UnreachableSince).Round(time.Second), us.ExpungeAfterSeconds)
			m.runtime.forgetTask(t.ID)
			changes = append(changes, events.PutTask(t))
			continue
		}
		for _, d := range []float64{us.InactiveAfterSeconds, us.ExpungeAfterSeconds} {
			if at := t.UnreachableSince.Add(seconds(d)); at.After(now) {
				m.wakeLocked(app.ID, at)
			}
		}
	}
	if err := m.commitLocked(changes...); err != nil {
		m.log.Warn("expunge unreachable tasks", "app", app.ID, "err", err)
	}
}

// unreachableStrategy reads Marathon's "disabled" or an object, the
// seconds left out being 0 (Marathon's later default).
func (r *reader) unreachableStrategy(p string, raw json.RawMessage) (events.UnreachableStrategy, bool) {
	if kind(raw) == '"' {
		s, ok := r.str(p, raw)
		if !ok {
			return events.UnreachableStrategy{}, false
		}
		if s != "disabled" {
			r.invalid.add(p, `must be "disabled" or an object with inactiveAfterSeconds and expungeAfterSeconds`)
			return events.UnreachableStrategy{}, false
		}
		return events.UnreachableStrategy{Disabled: true}, true
	}
	obj, ok := r.object(p, raw)
	if !ok {
		return events.UnreachableStrategy{}, false
	}
	var us events.UnreachableStrategy
	good := opt(r, obj, p, "inactiveAfterSeconds", &us.InactiveAfterSeconds, r.number)
	good = opt(r, obj, p, "expungeAfterSeconds", &us.ExpungeAfterSeconds, r.number) && good
	return us, good
}

// validateUnreachable holds the seconds to Marathon's rule:
// 0 ≤ inactiveAfterSeconds ≤ expungeAfterSeconds.
func validateUnreachable(errs *fieldErrs, us *events.UnreachableStrategy) {
	if us == nil || us.Disabled {
		return
	}
	const p = "/unreachableStrategy/inactiveAfterSeconds"
	switch {
	case us.InactiveAfterSeconds < 0:
		errs.add(p, fmt.Sprintf("inactiveAfterSeconds (%g) must be greater than or equal to 0", us.InactiveAfterSeconds))
	case us.InactiveAfterSeconds > us.ExpungeAfterSeconds:
		errs.add(p, fmt.Sprintf("inactiveAfterSeconds (%g) must be less or equal to expungeAfterSeconds, which is %g",
			us.InactiveAfterSeconds, us.ExpungeAfterSeconds))
	}
}

// unreachableView is the strategy as Marathon writes it: "disabled", or
// the object; absent when the app has none (atoll's default).
func unreachableView(us *events.UnreachableStrategy) any {
	switch {
	case us == nil:
		return nil
	case us.Disabled:
		return "disabled"
	}
	return struct {
		InactiveAfterSeconds float64 `json:"inactiveAfterSeconds"`
		ExpungeAfterSeconds  float64 `json:"expungeAfterSeconds"`
	}{us.InactiveAfterSeconds, us.ExpungeAfterSeconds}
}

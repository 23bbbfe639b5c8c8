package events

import (
	"slices"
	"time"
)

// App versions: Marathon keeps every definition an app had (scaling and
// restarts included), so that GET /v2/apps/{id}/versions lists them and
// PUT {"version": V} rolls back to one. The leader adds one per change
// (AppVersionAdded) and forgets the oldest beyond its limit
// (AppVersionRemoved); removing the app forgets them all. A history is an
// immutable slice, oldest first: a change makes a new slice, so copies of
// the state share histories.

// applyVersion applies an AppVersionAdded or AppVersionRemoved event.
func (s *State) applyVersion(e Event) {
	if s.noVersions {
		return
	}
	id := e.App.ID
	if e.Type == AppVersionAdded {
		setHistory(&s.AppVersions, id, WithVersion(s.AppVersions[id], *e.App))
	} else {
		setHistory(&s.AppVersions, id, WithoutVersion(s.AppVersions[id], e.App.Version))
	}
}

// setHistory makes h id's history in *m (app versions, group versions,
// kept apps), or forgets id when h is empty.
func setHistory[T any](m *map[string][]T, id string, h []T) {
	if len(h) == 0 {
		delete(*m, id)
		return
	}
	if *m == nil {
		*m = map[string][]T{}
	}
	(*m)[id] = h
}

// WithVersion returns history h with app a in its place by version (a
// definition of the same version replaced). h is not changed.
func WithVersion(h []App, a App) []App {
	i, found := slices.BinarySearchFunc(h, a.Version, func(x App, v time.Time) int { return x.Version.Compare(v) })
	out := make([]App, 0, len(h)+1)
	out = append(out, h[:i]...)
	out = append(out, a)
	if found {
		i++
	}
	return append(out, h[i:]...)
}

// WithoutVersion returns history h without the definition of version v.
// h is not changed.
func WithoutVersion(h []App, v time.Time) []App {
	i, found := slices.BinarySearchFunc(h, v, func(x App, v time.Time) int { return x.Version.Compare(v) })
	if !found {
		return h
	}
	return slices.Concat(h[:i], h[i+1:])
}

// DropVersions makes the state keep no app versions, now or later: for
// followers, which answer DNS and balance load with the current
// definitions only.
func (s *State) DropVersions() {
	s.noVersions, s.AppVersions = true, nil
	s.GroupVersions, s.KeptApps = nil, nil
}

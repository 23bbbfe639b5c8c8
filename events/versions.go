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

// historyEntry is what a history holds, oldest first by its version: an
// app's definitions (AppVersions, KeptApps) or a group's contents
// (GroupVersions).
type historyEntry interface{ versionTime() time.Time }

func (a App) versionTime() time.Time          { return a.Version }
func (g GroupVersion) versionTime() time.Time { return g.Version }

func cmpVersion[T historyEntry](x T, v time.Time) int { return x.versionTime().Compare(v) }

// WithVersion returns history h with x in its place by version (one of
// the same version replaced). h is not changed.
func WithVersion[T historyEntry](h []T, x T) []T {
	i, found := slices.BinarySearchFunc(h, x.versionTime(), cmpVersion[T])
	out := make([]T, 0, len(h)+1)
	out = append(out, h[:i]...)
	out = append(out, x)
	if found {
		i++
	}
	return append(out, h[i:]...)
}

// WithoutVersion returns history h without the entry of version v. h is
// not changed.
func WithoutVersion[T historyEntry](h []T, v time.Time) []T {
	i, found := slices.BinarySearchFunc(h, v, cmpVersion[T])
	if !found {
		return h
	}
	return slices.Concat(h[:i], h[i+1:])
}

// VersionIn finds the entry of exactly version v in history h.
func VersionIn[T historyEntry](h []T, v time.Time) (T, bool) {
	i, found := slices.BinarySearchFunc(h, v, cmpVersion[T])
	if !found {
		var zero T
		return zero, false
	}
	return h[i], true
}

// DropVersions makes the state keep no app versions, now or later: for
// followers, which answer DNS and balance load with the current
// definitions only.
func (s *State) DropVersions() {
	s.noVersions, s.AppVersions = true, nil
	s.GroupVersions, s.KeptApps = nil, nil
}

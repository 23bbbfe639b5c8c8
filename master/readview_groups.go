package master

import (
	"maps"
	"slices"
	"strings"

	"github.com/atollhq/atoll/events"
)

// groupsAfter is the read view's group records after event e: next when
// this batch already copied them, otherwise a copy of the current ones
// (a picture never changes once published).
func (r *readViews) groupsAfter(next map[string]events.Group, e events.Event) map[string]events.Group {
	if next == nil {
		next = maps.Clone(r.load().groups)
		if next == nil {
			next = map[string]events.Group{}
		}
	}
	switch e.Type {
	case events.GroupUpdated:
		next[e.Group.ID] = *e.Group
	case events.GroupRemoved:
		delete(next, e.ID)
	}
	return next
}

// groupPast is what the read view keeps of group versions (events.State's
// GroupVersions and KeptApps), for GET /v2/groups/{id}/versions/{v}. A
// batch that changes them copies the maps; the slices are never changed
// (events.State makes new ones), so pictures share them.
type groupPast struct {
	versions map[string][]events.GroupVersion
	kept     map[string][]events.App
}

// groupPastAfter is the read view's group versions after event e, copied
// as groupsAfter copies the records: next when this batch already copied
// them (nil until then, and for events that do not change them).
func (r *readViews) groupPastAfter(next *groupPast, e events.Event) *groupPast {
	switch e.Type {
	case events.GroupVersionAdded, events.GroupVersionRemoved, events.AppKept, events.AppReleased:
	default:
		return next
	}
	if next == nil {
		cur := r.load().past
		next = &groupPast{versions: maps.Clone(cur.versions), kept: maps.Clone(cur.kept)}
		if next.versions == nil {
			next.versions = map[string][]events.GroupVersion{}
		}
		if next.kept == nil {
			next.kept = map[string][]events.App{}
		}
	}
	// As events.State applies them (applyGroupVersion).
	s := events.State{GroupVersions: next.versions, KeptApps: next.kept}
	s.ApplyGroupVersion(e)
	next.versions, next.kept = s.GroupVersions, s.KeptApps
	return next
}

// The read view as a groupHistory (groupversions.go): what a group held
// at one of its versions, read without the master's lock.

func (v *readView) groupRecord(id string) (events.Group, bool) {
	g, ok := v.groups[id]
	return g, ok
}

func (v *readView) groupVersions(id string) []events.GroupVersion { return v.past.versions[id] }

func (v *readView) appAt(r events.Ref) (events.App, bool) {
	e, live := v.find(r.ID)
	if live {
		if a, ok := events.VersionIn(e.versions, r.Version); ok {
			return a, true
		}
	}
	if a, ok := events.VersionIn(v.past.kept[r.ID], r.Version); ok {
		return a, true
	}
	if live && e.app != nil && e.app.Version.Equal(r.Version) {
		return *e.app, true
	}
	return events.App{}, false
}

// appsBelow are the entries of the apps anywhere below group id (Marathon's
// transitiveApps), sorted by id.
func (v *readView) appsBelow(id string) []*appEntry {
	var out []*appEntry
	lo := 0
	if id != rootGroupID {
		lo, _ = slices.BinarySearchFunc(v.apps, id+"/", func(e *appEntry, p string) int { return strings.Compare(e.id, p) })
	}
	for _, e := range v.apps[lo:] {
		if !isUnder(e.id, id) {
			break
		}
		if e.app != nil {
			out = append(out, e)
		}
	}
	return out
}

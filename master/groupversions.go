package master

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/atollhq/atoll/events"
)

// Group versions (events/groupversions.go): every group change records
// what each group then holds, so that PUT /v2/groups/{id} {"version": V}
// can put the group back as it was (Marathon's GroupApiService
// revertToOlderVersion). A group's contents name their apps by version;
// the definitions stay in the app's history, and one that history lets
// go of (the app changed MaxAppVersions times since, or was deleted) is
// first kept aside (events.State.KeptApps) for as long as a group
// version refers to it.

// msgGroupNotAt is Marathon's refusal of a version the group never had
// (GroupApiService: an IllegalArgumentException, 422).
const msgGroupNotAt = "Group %s not available in version %s"

// maxGroupVersionRefs bounds the apps and groups directly in a group of
// which a version is kept: a version is one record (in ZooKeeper, one
// znode of at most about 230 KB at this size, well within a request);
// a version of a larger group is recorded as too large to keep.
const maxGroupVersionRefs = 4000

// groupVersionChangesLocked records what every group holds once a group
// change is committed: apps are the change's target by version (as
// committed), groups its group records. Only groups whose contents
// differ from their latest version get a new one, at now; the oldest
// beyond maxGroupVersions go, as do the versions of groups that are gone
// which nothing kept refers to, and the kept app definitions that no
// version refers to any more.
func (m *Master) groupVersionChangesLocked(apps map[string]time.Time, groups map[string]events.Group, now time.Time) []events.Change {
	ids := map[string]bool{rootGroupID: true}
	directApps := map[string][]events.Ref{}
	directGroups := map[string][]string{}
	note := func(id string) {
		for !ids[id] {
			ids[id] = true
			p := parentOf(id)
			directGroups[p] = append(directGroups[p], id)
			id = p
		}
	}
	for id, v := range apps {
		p := parentOf(id)
		note(p)
		directApps[p] = append(directApps[p], events.Ref{ID: id, Version: v})
	}
	for id := range groups {
		note(id)
	}
	// Deepest first, so a group's subgroups have their versions.
	depth := func(id string) int {
		if id == rootGroupID {
			return 0
		}
		return strings.Count(id, "/")
	}
	order := slices.SortedFunc(maps.Keys(ids), func(a, b string) int {
		if d := depth(b) - depth(a); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	byRef := func(a, b events.Ref) int { return strings.Compare(a.ID, b.ID) }
	at := map[string]time.Time{}
	var changes []events.Change
	added := map[events.Ref]events.GroupVersion{}
	dropped := map[events.Ref]bool{}
	for _, id := range order {
		gv := events.GroupVersion{ID: id, Apps: slices.SortedFunc(slices.Values(directApps[id]), byRef)}
		if rec, ok := groups[id]; ok {
			gv.Record, gv.Dependencies = true, slices.Clone(rec.Dependencies)
		}
		for _, sub := range slices.Sorted(slices.Values(directGroups[id])) {
			gv.Groups = append(gv.Groups, events.Ref{ID: sub, Version: at[sub]})
		}
		if n := len(gv.Apps) + len(gv.Groups); n > maxGroupVersionRefs {
			gv.Apps, gv.Groups, gv.Omitted = nil, nil, n
		}
		h := m.state.GroupVersions[id]
		if n := len(h); n > 0 && h[n-1].SameContents(gv) {
			at[id] = h[n-1].Version
			continue
		}
		gv.Version, at[id] = now, now
		changes = append(changes, events.PutGroupVersion(gv))
		added[events.Ref{ID: id, Version: now}] = gv
		for i := 0; i < len(h)+1-maxGroupVersions; i++ {
			changes = append(changes, events.DeleteGroupVersion(id, h[i].Version))
			dropped[events.Ref{ID: id, Version: h[i].Version}] = true
		}
	}
	return append(changes, m.collectGroupVersionsLocked(ids, added, dropped)...)
}

// collectGroupVersionsLocked forgets what nothing needs once the versions
// added and dropped are: the versions of groups that are gone (not in
// ids) that no version kept refers to, and the kept app definitions that
// no version kept refers to.
func (m *Master) collectGroupVersionsLocked(ids map[string]bool, added map[events.Ref]events.GroupVersion, dropped map[events.Ref]bool) []events.Change {
	lookup := func(r events.Ref) (events.GroupVersion, bool) {
		if gv, ok := added[r]; ok {
			return gv, true
		}
		if dropped[r] {
			return events.GroupVersion{}, false
		}
		return m.state.GroupVersionAt(r.ID, r.Version)
	}
	live := map[events.Ref]bool{}
	appsUsed := map[events.Ref]bool{}
	var mark func(gv events.GroupVersion)
	mark = func(gv events.GroupVersion) {
		r := events.Ref{ID: gv.ID, Version: gv.Version}
		if live[r] {
			return
		}
		live[r] = true
		for _, a := range gv.Apps {
			if _, kept := m.state.KeptApps[a.ID]; kept { // only those can go
				appsUsed[a] = true
			}
		}
		for _, sub := range gv.Groups {
			if child, ok := lookup(sub); ok {
				mark(child)
			}
		}
	}
	// Every version a group that exists keeps is wanted.
	for id, h := range m.state.GroupVersions {
		if ids[id] {
			for _, gv := range h {
				if !dropped[events.Ref{ID: id, Version: gv.Version}] {
					mark(gv)
				}
			}
		}
	}
	for _, gv := range added {
		mark(gv)
	}
	var changes []events.Change
	for _, id := range slices.Sorted(maps.Keys(m.state.GroupVersions)) {
		if ids[id] {
			continue
		}
		for _, gv := range m.state.GroupVersions[id] {
			r := events.Ref{ID: id, Version: gv.Version}
			if !live[r] && !dropped[r] {
				changes = append(changes, events.DeleteGroupVersion(id, gv.Version))
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(m.state.KeptApps)) {
		for _, a := range m.state.KeptApps[id] {
			if !appsUsed[events.Ref{ID: id, Version: a.Version}] {
				changes = append(changes, events.ReleaseApp(id, a.Version))
			}
		}
	}
	return changes
}

// forgetAppVersionLocked forgets definition version of app id from its
// history, keeping it aside first when a group version refers to it.
func (m *Master) forgetAppVersionLocked(id string, version time.Time) []events.Change {
	forget := events.DeleteAppVersion(id, version)
	ref := events.Ref{ID: id, Version: version}
	if !m.groupAppRefsLocked()[ref] || slices.ContainsFunc(m.state.KeptApps[id], func(a events.App) bool { return a.Version.Equal(version) }) {
		return []events.Change{forget}
	}
	a, ok := versionIn(m.state.AppVersions[id], version)
	if !ok {
		return []events.Change{forget}
	}
	return []events.Change{events.KeepApp(a), forget}
}

// groupAppRefsLocked is the set of app definitions group versions refer
// to, built when first needed after group versions changed.
func (m *Master) groupAppRefsLocked() map[events.Ref]bool {
	if m.runtime.groupAppRefs != nil {
		return m.runtime.groupAppRefs
	}
	refs := map[events.Ref]bool{}
	for _, h := range m.state.GroupVersions {
		for _, gv := range h {
			for _, a := range gv.Apps {
				refs[a] = true
			}
		}
	}
	m.runtime.groupAppRefs = refs
	return refs
}

// groupHistory is what groupAt reads: the working state, under the
// master's lock (stateHistory), or a read view, under none (readView).
type groupHistory interface {
	// groupRecord is group id's record now, if it has one.
	groupRecord(id string) (events.Group, bool)
	// groupVersions is what group id held at each of its versions,
	// oldest first.
	groupVersions(id string) []events.GroupVersion
	// appAt is the definition of app ref: kept, in the app's history,
	// or its current one.
	appAt(ref events.Ref) (events.App, bool)
}

// stateHistory is the working state as a groupHistory.
type stateHistory struct{ s *events.State }

func (h stateHistory) groupRecord(id string) (events.Group, bool) {
	g, ok := h.s.Groups[id]
	return g, ok
}

func (h stateHistory) groupVersions(id string) []events.GroupVersion { return h.s.GroupVersions[id] }

func (h stateHistory) appAt(r events.Ref) (events.App, bool) {
	if a, ok := h.s.KeptApp(r); ok {
		return a, true
	}
	if cur, ok := h.s.Apps[r.ID]; ok && cur.Version.Equal(r.Version) {
		return cur, true
	}
	return events.App{}, false
}

// groupHeld is what a group held at one of its versions: its apps
// (definitions as they were) and group records, the group's own
// included, and each group's version then.
type groupHeld struct {
	apps     map[string]events.App
	groups   map[string]events.Group
	versions map[string]time.Time
}

// groupAtLocked is what group id held at version: its apps (definitions
// as they were) and group records, the group's own included. A version
// the group never had is Marathon's 422; one whose contents are no longer
// all kept is refused too, naming what is missing, so that a rollback is
// whole or nothing.
func (m *Master) groupAtLocked(id string, version time.Time) (map[string]events.App, map[string]events.Group, error) {
	held, ok, err := groupAt(stateHistory{m.state}, id, version)
	if !ok {
		return nil, nil, &UnprocessableError{Message: fmt.Sprintf(msgGroupNotAt, id, jsonTime(version.Truncate(time.Millisecond)).String())}
	}
	if err != nil {
		return nil, nil, err
	}
	return held.apps, held.groups, nil
}

// groupAt is what group id held at version, read from src. ok is false
// when the group has no such version (or no record); err says what it
// held then that is no longer kept (422).
func groupAt(src groupHistory, id string, version time.Time) (held groupHeld, ok bool, err error) {
	want := version.Truncate(time.Millisecond)
	rec, ok := src.groupRecord(id)
	if !ok || !slices.ContainsFunc(rec.Versions, func(v time.Time) bool { return v.Truncate(time.Millisecond).Equal(want) }) {
		return groupHeld{}, false, nil
	}
	// The latest version of the contents at or before the group's: a
	// group gets a new one only when its contents change.
	h := src.groupVersions(id)
	i, found := slices.BinarySearchFunc(h, want, func(x events.GroupVersion, v time.Time) int {
		return x.Version.Truncate(time.Millisecond).Compare(v)
	})
	if !found {
		i--
	}
	if i < 0 || i >= len(h) {
		return groupHeld{}, true, &UnprocessableError{Message: fmt.Sprintf(msgGroupNotAt+": what it held then is no longer kept", id, jsonTime(want).String())}
	}
	held = groupHeld{apps: map[string]events.App{}, groups: map[string]events.Group{}, versions: map[string]time.Time{}}
	var missing []string
	var expand func(gv events.GroupVersion)
	expand = func(gv events.GroupVersion) {
		if gv.Omitted > 0 {
			missing = append(missing, fmt.Sprintf("group %s version %s (it held %d apps and groups directly, more than the %d of which atoll keeps a version)",
				gv.ID, jsonTime(gv.Version).String(), gv.Omitted, maxGroupVersionRefs))
			return
		}
		held.versions[gv.ID] = gv.Version
		if gv.Record {
			held.groups[gv.ID] = events.Group{ID: gv.ID, Dependencies: slices.Clone(gv.Dependencies)}
		}
		for _, r := range gv.Apps {
			a, ok := src.appAt(r)
			if !ok {
				missing = append(missing, fmt.Sprintf("app %s version %s", r.ID, jsonTime(r.Version).String()))
				continue
			}
			held.apps[r.ID] = a
		}
		for _, r := range gv.Groups {
			sub, ok := events.VersionIn(src.groupVersions(r.ID), r.Version)
			if !ok {
				missing = append(missing, fmt.Sprintf("group %s version %s", r.ID, jsonTime(r.Version).String()))
				continue
			}
			expand(sub)
		}
	}
	expand(h[i])
	if len(missing) > 0 {
		return groupHeld{}, true, &UnprocessableError{Message: fmt.Sprintf(msgGroupNotAt+": these definitions it held are no longer kept: %s",
			id, jsonTime(want).String(), strings.Join(missing, ", "))}
	}
	held.versions[id] = want // the group's own version then is the one asked for
	return held, true, nil
}

// rollBack makes group id in t what it held at version, as Marathon's
// RootGroup.putGroup of the old group: apps and groups below it that it
// did not hold then go, those it held come back as they were. Group
// records keep their lists of versions, each gaining now: as any group
// change, the rollback is a version of every group it puts back.
func (t groupTarget) rollBack(id string, apps map[string]events.App, groups map[string]events.Group, now time.Time) {
	kept := map[string]events.Group{}
	for g, rec := range t.groups {
		if g == id || isUnder(g, id) {
			kept[g] = rec
		}
	}
	t.removeBelow(id)
	for a, app := range apps {
		t.apps[a] = app
	}
	for g, rec := range groups {
		if old, ok := kept[g]; ok {
			rec.Version, rec.Versions = old.Version, old.Versions
		}
		t.groups[g] = rec
		t.touch(g, now)
	}
}

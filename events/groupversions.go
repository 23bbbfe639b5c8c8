package events

import (
	"slices"
	"time"
)

// Group versions: what a group held at each of its versions, so that
// PUT /v2/groups/{id} {"version": V} can put it back (Marathon keeps a
// root group per version for this). A GroupVersion names its contents
// rather than copying them: its own apps by (id, version), whose
// definitions are the app histories (AppVersions) or, once those let go
// of one, KeptApps; and its subgroups by (id, version) of their own
// GroupVersion. A change writes new GroupVersions only for the groups
// whose contents changed, each as long as its direct children, so a
// version costs what the change touched, not what the tree holds.
//
// Like app histories, these are the leader's alone: followers drop them
// (DropVersions) and NATS carries only their ids (Redacted).

// Ref names a definition: an app's by its id and version, or a group's
// GroupVersion by the group's id and that version.
type Ref struct {
	ID      string    `json:"id"`
	Version time.Time `json:"version"`
}

// GroupVersion is what group ID held at Version.
type GroupVersion struct {
	ID      string    `json:"id"`
	Version time.Time `json:"version"`
	// Record says the group had a record of its own (Group), with
	// these dependencies; a group without one only held apps.
	Record       bool     `json:"record,omitempty"`
	Dependencies []string `json:"dependencies,omitempty"`
	// Apps are the apps directly in the group, Groups the groups
	// directly below it, each sorted by id.
	Apps   []Ref `json:"apps,omitempty"`
	Groups []Ref `json:"groups,omitempty"`
	// Omitted, when not zero, is how many apps and groups the group held
	// directly: too many for the leader to keep this version of it
	// (Apps and Groups are then empty), so it cannot be rolled back to.
	Omitted int `json:"omitted,omitempty"`
}

// SameContents reports whether g and o held the same, whatever their
// versions.
func (g GroupVersion) SameContents(o GroupVersion) bool {
	return g.ID == o.ID && g.Record == o.Record && g.Omitted == o.Omitted && slices.Equal(g.Dependencies, o.Dependencies) &&
		slices.Equal(g.Apps, o.Apps) && slices.Equal(g.Groups, o.Groups)
}

// applyGroupVersion applies the events that change GroupVersions and
// KeptApps.
func (s *State) applyGroupVersion(e Event) {
	if s.noVersions {
		return
	}
	switch e.Type {
	case GroupVersionAdded:
		id := e.GroupVersion.ID
		setHistory(&s.GroupVersions, id, withGroupVersion(s.GroupVersions[id], *e.GroupVersion))
	case GroupVersionRemoved:
		id := e.GroupVersion.ID
		setHistory(&s.GroupVersions, id, withoutGroupVersion(s.GroupVersions[id], e.GroupVersion.Version))
	case AppKept:
		setHistory(&s.KeptApps, e.App.ID, WithVersion(s.KeptApps[e.App.ID], *e.App))
	case AppReleased:
		setHistory(&s.KeptApps, e.App.ID, WithoutVersion(s.KeptApps[e.App.ID], e.App.Version))
	}
}

// ApplyGroupVersion applies one event that changes GroupVersions or
// KeptApps, as Apply does but without its sequence checks: for a reader
// that keeps only these (the master's read view). Other events are
// ignored.
func (s *State) ApplyGroupVersion(e Event) { s.applyGroupVersion(e) }

func cmpGroupVersion(x GroupVersion, v time.Time) int { return x.Version.Compare(v) }

// withGroupVersion returns h, oldest first, with g in its place; h is
// not changed.
func withGroupVersion(h []GroupVersion, g GroupVersion) []GroupVersion {
	i, found := slices.BinarySearchFunc(h, g.Version, cmpGroupVersion)
	out := make([]GroupVersion, 0, len(h)+1)
	out = append(out, h[:i]...)
	out = append(out, g)
	if found {
		i++
	}
	return append(out, h[i:]...)
}

// withoutGroupVersion returns h without the version v; h is not changed.
func withoutGroupVersion(h []GroupVersion, v time.Time) []GroupVersion {
	i, found := slices.BinarySearchFunc(h, v, cmpGroupVersion)
	if !found {
		return h
	}
	return slices.Concat(h[:i], h[i+1:])
}

// GroupVersionAt finds group id's GroupVersion of exactly version v.
func (s *State) GroupVersionAt(id string, v time.Time) (GroupVersion, bool) {
	h := s.GroupVersions[id]
	i, found := slices.BinarySearchFunc(h, v, cmpGroupVersion)
	if !found {
		return GroupVersion{}, false
	}
	return h[i], true
}

// KeptApp finds the definition of app ref, in its history or among the
// definitions kept for group versions.
func (s *State) KeptApp(ref Ref) (App, bool) {
	for _, h := range [][]App{s.AppVersions[ref.ID], s.KeptApps[ref.ID]} {
		if i, found := slices.BinarySearchFunc(h, ref.Version, func(x App, v time.Time) int { return x.Version.Compare(v) }); found {
			return h[i], true
		}
	}
	return App{}, false
}

// SetGroupVersions fills GroupVersions and KeptApps from their records,
// in any order: for stores that keep them one record each.
func (s *State) SetGroupVersions(gvs []GroupVersion, kept []App) {
	s.GroupVersions, s.KeptApps = nil, nil
	for _, g := range gvs {
		if s.GroupVersions == nil {
			s.GroupVersions = map[string][]GroupVersion{}
		}
		s.GroupVersions[g.ID] = withGroupVersion(s.GroupVersions[g.ID], g)
	}
	for _, a := range kept {
		if s.KeptApps == nil {
			s.KeptApps = map[string][]App{}
		}
		s.KeptApps[a.ID] = WithVersion(s.KeptApps[a.ID], a)
	}
}

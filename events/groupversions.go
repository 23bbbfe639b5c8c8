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
		setHistory(&s.GroupVersions, id, WithVersion(s.GroupVersions[id], *e.GroupVersion))
	case GroupVersionRemoved:
		id := e.GroupVersion.ID
		setHistory(&s.GroupVersions, id, WithoutVersion(s.GroupVersions[id], e.GroupVersion.Version))
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

// GroupVersionAt finds group id's GroupVersion of exactly version v.
func (s *State) GroupVersionAt(id string, v time.Time) (GroupVersion, bool) {
	return VersionIn(s.GroupVersions[id], v)
}

// KeptApp finds the definition of app ref, in its history or among the
// definitions kept for group versions.
func (s *State) KeptApp(ref Ref) (App, bool) {
	if a, ok := VersionIn(s.AppVersions[ref.ID], ref.Version); ok {
		return a, true
	}
	return VersionIn(s.KeptApps[ref.ID], ref.Version)
}

// SetGroupVersions fills GroupVersions and KeptApps from their records,
// in any order: for stores that keep them one record each.
func (s *State) SetGroupVersions(gvs []GroupVersion, kept []App) {
	s.GroupVersions, s.KeptApps = nil, nil
	for _, g := range gvs {
		if s.GroupVersions == nil {
			s.GroupVersions = map[string][]GroupVersion{}
		}
		s.GroupVersions[g.ID] = WithVersion(s.GroupVersions[g.ID], g)
	}
	for _, a := range kept {
		if s.KeptApps == nil {
			s.KeptApps = map[string][]App{}
		}
		s.KeptApps[a.ID] = WithVersion(s.KeptApps[a.ID], a)
	}
}

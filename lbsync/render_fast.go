package lbsync

import (
	"slices"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/templates"
)

// renderMembership renders s when it differs from prev only in which tasks
// sit in the backends, the common case (a task started, ended, turned
// healthy): every app is as prev rendered it, so only the slots are
// assigned again and the config assembled from prev's parts. It reports
// false, and RenderNext renders in full, when anything else may have
// changed: an app, the templates, the Config, a quarantine, or a backend
// that needs more slots (a reload). With touched (the apps whose tasks an
// event changed, from a caller that also knows no app changed), only
// those apps are looked at: the work follows the change, not the cluster.
func renderMembership(prev *Result, s *events.State, cfg Config, set *templates.Set, q Quarantine, touched map[string]bool) (Result, bool) {
	if prev == nil || prev.set != set || len(q) > 0 || prev.quarantined || len(prev.cache) != len(s.Apps) {
		return Result{}, false
	}
	for id, app := range s.Apps {
		if touched != nil && !touched[id] {
			continue
		}
		c := prev.cache[id]
		if c == nil || c.set != set || c.cfg != cfg || !sameApp(&c.app, &app) {
			return Result{}, false
		}
	}
	r := &renderer{cfg: &cfg, set: set, prev: prev}
	r.indexTasks(s, touched)
	res := *prev
	res.eventTimes = nil
	res.parts = slices.Clone(prev.parts)
	for i := range res.parts {
		c := &res.parts[i]
		if touched != nil && !touched[c.appID] {
			continue
		}
		app := s.Apps[c.appID]
		old := c.part.b
		slots := assignSlots(old.Name, old, r.targets(&app, c.port), cfg.SlotStep)
		if len(slots) != len(old.Slots) {
			return Result{}, false // grown: a new structure, a reload
		}
		if !slices.Equal(slots, old.Slots) {
			b := *old
			b.Slots = slots
			c.part.b = &b
		}
	}
	if err := res.assemble(); err != nil {
		return Result{}, false
	}
	return res, true
}

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
// that needs more slots (a reload).
func renderMembership(prev *Result, s *events.State, cfg Config, set *templates.Set, q Quarantine) (Result, bool) {
	if prev == nil || prev.set != set || len(q) > 0 || prev.quarantined || len(prev.cache) != len(s.Apps) {
		return Result{}, false
	}
	for id, app := range s.Apps {
		c := prev.cache[id]
		if c == nil || c.set != set || c.cfg != cfg || !sameApp(&c.app, &app) {
			return Result{}, false
		}
	}
	r := &renderer{cfg: &cfg, set: set, prev: prev}
	r.indexTasks(s)
	res := *prev
	res.eventTimes = nil
	res.parts = slices.Clone(prev.parts)
	for i := range res.parts {
		c := &res.parts[i]
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

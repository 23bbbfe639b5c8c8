package lbsync

import (
	"maps"
	"slices"
	"strings"

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
	var changed []int
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
			changed = append(changed, i)
		}
	}
	if len(changed) == 0 {
		return res, true
	}
	res.Backends = maps.Clone(prev.Backends)
	for _, i := range changed {
		b := res.parts[i].part.b
		res.Backends[b.Name] = b
	}
	res.Config = patchServers(prev.Config, res.parts, changed)
	return res, true
}

// patchServers is text (a config assembled from parts) with the server
// lines of the parts at changed (ascending) written again from their new
// slots; every part's offsets are moved to where its lines now are. The
// structure hash, the maps and the line numbers stay: only addresses and
// states differ, never the number of lines.
func patchServers(text string, parts []committed, changed []int) string {
	var b strings.Builder
	b.Grow(len(text) + 64*len(changed))
	last := 0 // text before this offset is in b
	next := 0 // index into changed
	for i := range parts {
		c := &parts[i]
		start, end := c.servers[0], c.servers[1]
		if next < len(changed) && changed[next] == i {
			next++
			b.WriteString(text[last:start])
			from := b.Len()
			for _, s := range c.part.b.Slots {
				writeServer(&b, s, c.part.serverOpts)
			}
			c.servers = [2]int{from, b.Len()}
			last = end
			continue
		}
		shift := b.Len() - last
		c.servers = [2]int{start + shift, end + shift}
	}
	b.WriteString(text[last:])
	return b.String()
}

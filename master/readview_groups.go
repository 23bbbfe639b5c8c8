package master

import (
	"maps"

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

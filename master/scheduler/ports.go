package scheduler

import (
	"fmt"
	"slices"

	"github.com/atollhq/atoll/events"
)

// The range service ports are assigned from, inclusive: Marathon's default
// --local_port_min and --local_port_max.
const (
	ServicePortMin = 10000
	ServicePortMax = 20000
)

// AssignServicePorts fills the app's zero service ports with the lowest
// port in ServicePortMin..ServicePortMax that no other app in s uses. An
// index that had a port in the app's previous version (s.Apps[app.ID])
// keeps it when still free, so that load balancers and clients need not
// follow a port that an update did not mean to change.
//
// It replaces app.PortDefinitions with a new slice rather than writing into
// the old one, which may be shared with the state. On error, when the range
// is exhausted, the app is left unchanged.
func AssignServicePorts(s *events.State, app *events.App) error {
	used := map[int]bool{}
	for id, other := range s.Apps {
		if id == app.ID {
			continue
		}
		for _, pd := range other.PortDefinitions {
			if pd.Port != 0 {
				used[pd.Port] = true
			}
		}
	}
	defs := slices.Clone(app.PortDefinitions)
	for _, pd := range defs {
		if pd.Port != 0 {
			used[pd.Port] = true
		}
	}

	// Previous ports first, so that a fresh pick for one index cannot take
	// the port another index is about to keep.
	if old, ok := s.Apps[app.ID]; ok {
		for i := range defs {
			if defs[i].Port != 0 || i >= len(old.PortDefinitions) {
				continue
			}
			if p := old.PortDefinitions[i].Port; p != 0 && !used[p] {
				defs[i].Port = p
				used[p] = true
			}
		}
	}

	next := ServicePortMin
	for i := range defs {
		if defs[i].Port != 0 {
			continue
		}
		for next <= ServicePortMax && used[next] {
			next++
		}
		if next > ServicePortMax {
			return fmt.Errorf("app %s: portDefinitions[%d]: no free service port in %d-%d", app.ID, i, ServicePortMin, ServicePortMax)
		}
		defs[i].Port = next
		used[next] = true
	}
	app.PortDefinitions = defs
	return nil
}

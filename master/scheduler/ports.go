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
// The service ports are the app's PortSpecs: its port definitions, or its
// container's port mappings when it is bridged. It replaces them with a
// new slice rather than writing into the old one, which may be shared with
// the state. On error, when the range
// is exhausted, the app is left unchanged.
//
// It counts every app of s; a caller that assigns again and again keeps a
// ServicePorts instead.
func AssignServicePorts(s *events.State, app *events.App) error {
	return NewServicePorts(s).Assign(s, app)
}

// ServicePorts is which service ports the apps of a state use, kept up to
// date app by app (Set, Remove) as the state changes, so that assigning
// ports to one more app costs a walk of the range, not of every app: at
// 10,000 apps, a walk of every app on each POST /v2/apps was a tenth of
// the master's work.
type ServicePorts struct {
	// inRange counts the apps using each port of the range, by port -
	// ServicePortMin; outside counts those using a port outside it (an
	// explicit one: such ports are never picked, but may be kept).
	inRange []int32
	outside map[int]int32
	// byApp is the ports each app is counted with, as its record had them.
	byApp map[string][]int
}

// NewServicePorts counts the service ports of every app in s.
func NewServicePorts(s *events.State) *ServicePorts {
	sp := &ServicePorts{
		inRange: make([]int32, ServicePortMax-ServicePortMin+1),
		outside: map[int]int32{},
		byApp:   make(map[string][]int, len(s.Apps)),
	}
	for _, a := range s.Apps {
		sp.Set(a)
	}
	return sp
}

// Set counts app's service ports in place of those of its previous record.
func (sp *ServicePorts) Set(app events.App) {
	sp.Remove(app.ID)
	var ports []int
	for _, pd := range app.PortSpecs() {
		if pd.Port != 0 {
			ports = append(ports, pd.Port)
			sp.add(pd.Port, 1)
		}
	}
	if ports != nil {
		sp.byApp[app.ID] = ports
	}
}

// Remove stops counting an app's service ports.
func (sp *ServicePorts) Remove(appID string) {
	for _, p := range sp.byApp[appID] {
		sp.add(p, -1)
	}
	delete(sp.byApp, appID)
}

func (sp *ServicePorts) add(port int, by int32) {
	if port >= ServicePortMin && port <= ServicePortMax {
		sp.inRange[port-ServicePortMin] += by
		return
	}
	if n := sp.outside[port] + by; n > 0 {
		sp.outside[port] = n
	} else {
		delete(sp.outside, port)
	}
}

func (sp *ServicePorts) count(port int) int32 {
	if port >= ServicePortMin && port <= ServicePortMax {
		return sp.inRange[port-ServicePortMin]
	}
	return sp.outside[port]
}

// Assign is AssignServicePorts on the apps counted, which must be those
// of s (s gives the app's previous version).
func (sp *ServicePorts) Assign(s *events.State, app *events.App) error {
	own := sp.byApp[app.ID] // the app's previous ports do not block it
	var taken []int         // ports this assignment gave out or keeps
	used := func(p int) bool {
		if n := sp.count(p); n > 0 {
			for _, o := range own {
				if o == p {
					n--
				}
			}
			if n > 0 {
				return true
			}
		}
		return slices.Contains(taken, p)
	}
	defs := slices.Clone(app.PortSpecs())
	for _, pd := range defs {
		if pd.Port != 0 {
			taken = append(taken, pd.Port)
		}
	}

	// Previous ports first, so that a fresh pick for one index cannot take
	// the port another index is about to keep.
	if old, ok := s.Apps[app.ID]; ok {
		oldDefs := old.PortSpecs()
		for i := range defs {
			if defs[i].Port != 0 || i >= len(oldDefs) {
				continue
			}
			if p := oldDefs[i].Port; p != 0 && !used(p) {
				defs[i].Port = p
				taken = append(taken, p)
			}
		}
	}

	next := ServicePortMin
	for i := range defs {
		if defs[i].Port != 0 {
			continue
		}
		for next <= ServicePortMax && used(next) {
			next++
		}
		if next > ServicePortMax {
			return fmt.Errorf("app %s: %s[%d]: no free service port in %d-%d", app.ID, portsField(*app), i, ServicePortMin, ServicePortMax)
		}
		defs[i].Port = next
		taken = append(taken, next)
	}
	setServicePorts(app, defs)
	return nil
}

// setServicePorts writes the service ports of defs (the app's PortSpecs)
// back where the app keeps them: its port mappings when it is bridged,
// its port definitions otherwise. Both are replaced, never written into:
// the state may share them.
func setServicePorts(app *events.App, defs []events.PortDefinition) {
	if !app.Bridged() || app.Container == nil {
		app.PortDefinitions = defs
		return
	}
	c := *app.Container
	c.PortMappings = slices.Clone(c.PortMappings)
	for i := range c.PortMappings {
		c.PortMappings[i].ServicePort = defs[i].Port
	}
	app.Container = &c
}

// portsField names where the app's service ports are, for errors.
func portsField(app events.App) string {
	if app.Bridged() && app.Container != nil {
		return "container.portMappings"
	}
	return "portDefinitions"
}

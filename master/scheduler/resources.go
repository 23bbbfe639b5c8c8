package scheduler

import (
	"slices"
	"strings"

	"github.com/atollhq/atoll/events"
)

// epsilon absorbs float rounding: 1.0 minus ten tasks of 0.1 cpus must
// still fit nothing, not refuse a 0 cpu task.
const epsilon = 1e-9

// node is an active agent with what is still free on it, updated as one
// Place call puts instances on it.
type node struct {
	agent           events.Agent
	cpus, mem, disk float64
	ranges          []events.PortRange // sorted by Begin, so the first free port is the lowest
	used            map[int]bool       // host ports held by active tasks or chosen in this call
}

// nodes returns the active agents, sorted by id, less what their active
// tasks hold. Tasks are summed in id order so float sums are reproducible.
func nodes(s *events.State) []*node {
	byID := map[string]*node{}
	var out []*node
	for _, a := range s.SortedAgents() {
		if a.State != events.AgentActive {
			continue
		}
		n := &node{
			agent:  a,
			cpus:   a.Resources.Cpus,
			mem:    a.Resources.Mem,
			disk:   a.Resources.Disk,
			ranges: slices.Clone(a.Resources.Ports),
			used:   map[int]bool{},
		}
		slices.SortFunc(n.ranges, func(x, y events.PortRange) int { return x.Begin - y.Begin })
		byID[a.ID] = n
		out = append(out, n)
	}
	for _, t := range sortedTasks(s) {
		n, ok := byID[t.AgentID]
		if !ok || !t.State.Active() {
			continue
		}
		n.cpus -= t.Cpus
		n.mem -= t.Mem
		n.disk -= t.Disk
		for _, p := range t.Ports {
			n.used[p] = true
		}
	}
	return out
}

// sortedTasks lists every task by id, for deterministic iteration.
func sortedTasks(s *events.State) []events.Task {
	out := make([]events.Task, 0, len(s.Tasks))
	for _, t := range s.Tasks {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b events.Task) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// fit returns the host ports one more instance of the app would get here,
// or what the agent lacks ("cpus", "mem", "disk", "ports").
func (n *node) fit(app events.App) (ports []int, lack []string) {
	if n.cpus+epsilon < app.Cpus {
		lack = append(lack, "cpus")
	}
	if n.mem+epsilon < app.Mem {
		lack = append(lack, "mem")
	}
	if n.disk+epsilon < app.Disk {
		lack = append(lack, "disk")
	}
	ports, ok := n.pickPorts(app)
	if !ok {
		lack = append(lack, "ports")
	}
	if len(lack) > 0 {
		return nil, lack
	}
	return ports, nil
}

// take books one instance on the node.
func (n *node) take(app events.App, ports []int) {
	n.cpus -= app.Cpus
	n.mem -= app.Mem
	n.disk -= app.Disk
	for _, p := range ports {
		n.used[p] = true
	}
}

// pickPorts chooses one host port per port definition: the service port
// itself under requirePorts, else the lowest free port the agent offers.
// A zero service port cannot be required, so it takes any port.
func (n *node) pickPorts(app events.App) ([]int, bool) {
	ports := make([]int, 0, len(app.PortDefinitions))
	taken := func(p int) bool { return n.used[p] || slices.Contains(ports, p) }
	for _, pd := range app.PortDefinitions {
		p := 0
		if app.RequirePorts && pd.Port != 0 {
			if !n.offers(pd.Port) || taken(pd.Port) {
				return nil, false
			}
			p = pd.Port
		} else if p = n.lowestFree(taken); p == 0 {
			return nil, false
		}
		ports = append(ports, p)
	}
	return ports, true
}

// offers reports whether the port lies in one of the agent's ranges.
func (n *node) offers(p int) bool {
	for _, r := range n.ranges {
		if r.Begin <= p && p <= r.End {
			return true
		}
	}
	return false
}

// lowestFree returns the lowest offered port not taken, or 0 when none is.
func (n *node) lowestFree(taken func(int) bool) int {
	for _, r := range n.ranges {
		for p := max(r.Begin, 1); p <= r.End; p++ {
			if !taken(p) {
				return p
			}
		}
	}
	return 0
}

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

// Pool is the active agents with what is still free on each, kept
// between placements: the master refreshes only the agents whose tasks or
// resources changed, so placing an instance costs what the agents cost,
// not what every task in the cluster does.
type Pool struct {
	byID  map[string]*node
	order []*node // active agents by id
}

// NewPool is the pool of the state's active agents.
func NewPool(s *events.State) *Pool {
	p := &Pool{byID: map[string]*node{}}
	for id := range s.Agents {
		p.refresh(s, id)
	}
	p.sort()
	return p
}

// Refresh recomputes the named agents from the state: their resources,
// whether they are active, and what their tasks hold.
func (p *Pool) Refresh(s *events.State, agentIDs []string) {
	if len(agentIDs) == 0 {
		return
	}
	for _, id := range agentIDs {
		p.refresh(s, id)
	}
	p.sort()
}

func (p *Pool) refresh(s *events.State, id string) {
	a, ok := s.Agents[id]
	if !ok || a.State != events.AgentActive {
		delete(p.byID, id)
		return
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
	// TasksOn is sorted by id, so float sums are reproducible.
	for _, t := range s.TasksOn(id) {
		if !t.State.Active() {
			continue
		}
		n.cpus -= t.Cpus
		n.mem -= t.Mem
		n.disk -= t.Disk
		for _, port := range t.Ports {
			n.used[port] = true
		}
	}
	p.byID[id] = n
}

func (p *Pool) sort() {
	p.order = p.order[:0]
	for _, n := range p.byID {
		p.order = append(p.order, n)
	}
	slices.SortFunc(p.order, func(a, b *node) int { return strings.Compare(a.agent.ID, b.agent.ID) })
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

package scheduler

import (
	"math"
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
	// held is what the node's active tasks and the instances booked on
	// it hold, in millionths: free is the agent's resources less held,
	// computed the same way whether held was summed from the state or
	// booked instance by instance, so a node booked by Place is what a
	// refresh after its tasks are staged would make it.
	held   struct{ cpus, mem, disk int64 }
	ranges []events.PortRange // sorted by Begin, so the first free port is the lowest
	used   map[int]bool       // host ports held by active tasks or chosen in this call
	// floor is a port at or below the lowest free one: every offered
	// port under it is used. A busy agent's hundred used ports are then
	// not walked again for every instance placed.
	floor int
	// inRegion and onAgent are the instances of the app being placed in
	// this node's region and on it (set by newSpread for one Place).
	inRegion *int
	onAgent  int
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
	resort := false
	for _, id := range agentIDs {
		if p.refresh(s, id) {
			resort = true
		}
	}
	if resort { // only when an agent came or went: nodes change in place
		p.sort()
	}
}

func (p *Pool) refresh(s *events.State, id string) (membership bool) {
	a, ok := s.Agents[id]
	old, had := p.byID[id]
	if !ok || a.State != events.AgentActive {
		delete(p.byID, id)
		return had
	}
	n := &node{
		agent:  a,
		ranges: slices.Clone(a.Resources.Ports),
		used:   map[int]bool{},
	}
	slices.SortFunc(n.ranges, func(x, y events.PortRange) int { return x.Begin - y.Begin })
	// Sums in millionths are exact whatever the order the tasks come in,
	// so the same tasks always leave the same free resources.
	s.EachTaskOn(id, func(t events.Task) {
		if !t.State.Active() {
			return
		}
		n.hold(t.Cpus, t.Mem, t.Disk)
		for _, port := range t.Ports {
			n.used[port] = true
		}
	})
	n.setFree()
	n.raiseFloor()
	if had {
		*old = *n // p.order holds old: it stays in place
		return false
	}
	p.byID[id] = n
	return true
}

func millionths(x float64) int64 { return int64(math.Round(x * 1e6)) }

// hold adds what one task holds to the node's held resources.
func (n *node) hold(cpus, mem, disk float64) {
	n.held.cpus += millionths(cpus)
	n.held.mem += millionths(mem)
	n.held.disk += millionths(disk)
}

// setFree computes the free resources from the agent's and the held ones.
func (n *node) setFree() {
	r := n.agent.Resources
	n.cpus = r.Cpus - float64(n.held.cpus)/1e6
	n.mem = r.Mem - float64(n.held.mem)/1e6
	n.disk = r.Disk - float64(n.held.disk)/1e6
}

func (p *Pool) sort() {
	p.order = p.order[:0]
	for _, n := range p.byID {
		p.order = append(p.order, n)
	}
	slices.SortFunc(p.order, func(a, b *node) int { return strings.Compare(a.agent.ID, b.agent.ID) })
}

// fits reports whether one more instance of the app fits here, or what
// the agent lacks ("cpus", "mem", "disk", "ports"); it allocates only to
// say what is lacking, as it runs for every agent and every instance.
func (n *node) fits(app events.App) (lack []string) {
	if n.cpus+epsilon < app.Cpus {
		lack = append(lack, "cpus")
	}
	if n.mem+epsilon < app.Mem {
		lack = append(lack, "mem")
	}
	if n.disk+epsilon < app.Disk {
		lack = append(lack, "disk")
	}
	if !n.hasPorts(app) {
		lack = append(lack, "ports")
	}
	return lack
}

// hasPorts is pickPorts's verdict without the ports: the common case (no
// required ports, one port definition) costs one look at the floor.
func (n *node) hasPorts(app events.App) bool {
	if app.RequirePorts || len(app.PortDefinitions) > 1 || app.Bridged() {
		_, ok := n.pickPorts(app)
		return ok
	}
	if len(app.PortDefinitions) == 0 {
		return true
	}
	return n.lowestFree(func(p int) bool { return n.used[p] }) != 0
}

// take books one instance on the node.
func (n *node) take(app events.App, ports []int) {
	n.hold(app.Cpus, app.Mem, app.Disk) // as refresh counts the task staged for it
	n.setFree()
	for _, p := range ports {
		n.used[p] = true
	}
	n.raiseFloor()
}

// raiseFloor moves floor past the used ports at the bottom of the ranges.
func (n *node) raiseFloor() {
	for _, r := range n.ranges {
		p := max(r.Begin, 1, n.floor)
		for ; p <= r.End && n.used[p]; p++ {
		}
		if p <= r.End {
			n.floor = p
			return
		}
		n.floor = r.End + 1
	}
}

// pickPorts chooses one host port per port definition or, for a bridged
// app, per port mapping (hostPorts): the port asked for when there is one,
// else the lowest free port the agent offers that no other of the task's
// ports asks for.
func (n *node) pickPorts(app events.App) ([]int, bool) {
	wants := hostPorts(app)
	ports := make([]int, 0, len(wants))
	taken := func(p int) bool { return n.used[p] || slices.Contains(ports, p) || slices.Contains(wants, p) }
	for _, want := range wants {
		p := want
		if want != 0 {
			// The same fixed port twice is a bridged app's tcp and udp
			// mappings of one port (validation refuses it otherwise).
			if !n.offers(want) || n.used[want] {
				return nil, false
			}
		} else if p = n.lowestFree(taken); p == 0 {
			return nil, false
		}
		ports = append(ports, p)
	}
	return ports, true
}

// hostPorts is what each of the app's host ports asks for, in the order
// of its PortSpecs: 0 for any port the agent offers, else that port. A
// bridged app's are its port mappings' hostPorts; a host-network app's are
// its port definitions' ports under requirePorts (a zero port cannot be
// required: it takes any), else any.
func hostPorts(app events.App) []int {
	if app.Bridged() && app.Container != nil {
		wants := make([]int, len(app.Container.PortMappings))
		for i, pm := range app.Container.PortMappings {
			wants[i] = pm.HostPort
		}
		return wants
	}
	wants := make([]int, len(app.PortDefinitions))
	if app.RequirePorts {
		for i, pd := range app.PortDefinitions {
			wants[i] = pd.Port
		}
	}
	return wants
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
		for p := max(r.Begin, 1, n.floor); p <= r.End; p++ {
			if !taken(p) {
				return p
			}
		}
	}
	return 0
}

package scheduler

import (
	"cmp"
	"strings"

	"github.com/atollhq/atoll/events"
)

// Placement is where one new instance goes.
type Placement struct {
	AgentID string
	Host    string
	IP      string
	Ports   []int // host ports, one per app port definition
}

// Result is what Place could do. Unplaced instances are whole instances it
// could not place, and Reason says why in words for the deployment's
// "waiting" field; it is empty when all were placed.
type Result struct {
	Placements []Placement
	Unplaced   int
	Reason     string
}

// spreadAttr is the attribute instances spread across by default, before
// spreading across agents, so that losing one region loses fewest.
const spreadAttr = "region"

// Place finds agents for n more instances of the app. The app's active
// tasks count for its constraints, and so does each instance placed earlier
// in the same call. It places whole instances only and reports the rest as
// Unplaced with the reason the first of them did not fit.
func Place(s *events.State, app events.App, n int) Result {
	return PlaceIn(NewPool(s), s, app, n)
}

// PlaceIn is Place on a pool kept between calls; what it places is
// booked on the pool.
func PlaceIn(p *Pool, s *events.State, app events.App, n int) Result {
	if n <= 0 {
		return Result{}
	}
	cs, errs := ParseConstraints(app.Constraints)
	if len(errs) > 0 {
		return Result{Unplaced: n, Reason: invalidReason(errs)}
	}
	rules := compile(cs)
	pool := p.order
	placed := appSites(s, app.ID)
	known := knownValues(rules, pool)
	spread := newSpread(placed, pool)

	var res Result
	for i := 0; i < n; i++ {
		best, ports, rejects := choose(app, rules, pool, placed, known)
		if best == nil {
			res.Unplaced = n - i
			res.Reason = explain(len(pool), rules, rejects)
			break
		}
		best.take(app, ports)
		at := agentSite(best.agent)
		placed = append(placed, at)
		spread.add(at, best)
		res.Placements = append(res.Placements, Placement{
			AgentID: best.agent.ID,
			Host:    best.agent.Hostname,
			IP:      best.agent.IP,
			Ports:   ports,
		})
	}
	return res
}

// appSites lists where the app's active tasks run.
func appSites(s *events.State, appID string) []site {
	var out []site
	for _, t := range s.TasksOf(appID) {
		if t.State.Active() {
			out = append(out, taskSite(s, t))
		}
	}
	return out
}

// knownValues collects, per GROUP_BY rule, the field's values on active
// agents: the groups to spread across, including those still empty.
func knownValues(rules []rule, pool []*node) []map[string]bool {
	known := make([]map[string]bool, len(rules))
	for i, r := range rules {
		if r.Operator != GroupBy {
			continue
		}
		known[i] = map[string]bool{}
		for _, n := range pool {
			if v, ok := r.value(agentSite(n.agent)); ok {
				known[i][v] = true
			}
		}
	}
	return known
}

// choose returns the best node for one more instance and its host ports,
// or nil and why each node was refused.
func choose(app events.App, rules []rule, pool []*node, placed []site, known []map[string]bool) (*node, []int, []reject) {
	tallies := make([]tally, len(rules))
	for i, r := range rules {
		tallies[i] = r.tally(placed)
	}
	// better orders candidates: fewest of the app's instances in the
	// region, then on the agent, then most free cpus, then agent id.
	better := func(a, b *node) bool {
		if c := cmp.Compare(*a.inRegion, *b.inRegion); c != 0 {
			return c < 0
		}
		if c := cmp.Compare(a.onAgent, b.onAgent); c != 0 {
			return c < 0
		}
		if a.cpus != b.cpus {
			return a.cpus > b.cpus
		}
		return a.agent.ID < b.agent.ID
	}

	var best *node
	var rejects []reject
	for _, n := range pool {
		if rj, refused := refusal(n, app, rules, tallies, known); refused {
			rejects = append(rejects, rj)
			continue
		}
		if best != nil && !better(n, best) {
			// It cannot be chosen, fit or not; and once a node fits,
			// the rejects explain nothing. Checking resources and ports
			// only for a better candidate makes a 1,000-instance pass
			// on 1,000 agents a third cheaper.
			continue
		}
		if why := containerRefusal(n, app); why != "" {
			rejects = append(rejects, reject{rule: ruleContainerPolicy, detail: why})
			continue
		}
		if lack := n.fits(app); len(lack) > 0 {
			rejects = append(rejects, reject{rule: ruleResources, detail: strings.Join(lack, "/")})
			continue
		}
		if best == nil || better(n, best) {
			best = n
		}
	}
	if best == nil {
		return nil, nil, rejects
	}
	ports, _ := best.pickPorts(app)
	return best, ports, rejects
}

// spread counts the app's instances per region and per agent, kept up to
// date as instances are placed and read by each node through its own
// fields (inRegion, onAgent): recounting per instance, or a map lookup per
// node compared, would make a 10,000-instance scale-up on 1,000 agents
// cost billions of steps.
type spread struct {
	perRegion map[string]*int
}

// newSpread counts the placed instances and points every node of the pool
// at its counts.
func newSpread(placed []site, pool []*node) *spread {
	s := &spread{perRegion: map[string]*int{}}
	perAgent := map[string]int{}
	for _, p := range placed {
		*s.region(p.attrs[spreadAttr])++
		perAgent[p.agentID]++
	}
	for _, n := range pool {
		n.inRegion = s.region(n.agent.Attributes[spreadAttr])
		n.onAgent = perAgent[n.agent.ID]
	}
	return s
}

func (s *spread) region(name string) *int {
	c := s.perRegion[name]
	if c == nil {
		c = new(int)
		s.perRegion[name] = c
	}
	return c
}

// add counts one more instance, placed on node n.
func (s *spread) add(p site, n *node) {
	*s.region(p.attrs[spreadAttr])++
	n.onAgent++
}

// containerRefusal says why the agent's container policy refuses the
// app's container ("" if it does not): a host volume or a capability the
// agent does not allow. The agent would fail such a task; placing it
// elsewhere, or saying why nowhere, is what the user needs.
func containerRefusal(n *node, app events.App) string {
	if app.Container == nil {
		return ""
	}
	var params []events.DockerParameter
	if app.Container.Docker != nil {
		params = app.Container.Docker.Parameters
	}
	return n.agent.Containers.Refusal(app.Container.Volumes, params)
}

// refusal returns the first constraint that refuses the node, in the app's
// constraint order.
func refusal(n *node, app events.App, rules []rule, tallies []tally, known []map[string]bool) (reject, bool) {
	if len(rules) == 0 {
		// Most apps have no constraints: a node's site is made a
		// million times in a 1,000-instance pass on 1,000 agents.
		return reject{}, false
	}
	at := agentSite(n.agent)
	for i, r := range rules {
		if why := r.refuse(at, tallies[i], known[i]); why != "" {
			return reject{rule: i, detail: why}, true
		}
	}
	return reject{}, false
}

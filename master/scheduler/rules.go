package scheduler

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/atollhq/atoll/events"
)

// rule is a validated constraint ready to evaluate: its field resolved and
// its value parsed once, not once per agent.
type rule struct {
	Constraint
	attr string         // attribute name; "" when the field is the hostname
	re   *regexp.Regexp // LIKE and UNLIKE, anchored to the whole value
	n    int            // MAX_PER limit, or GROUP_BY minimum number of groups
}

// compile turns parsed constraints into rules. The constraints come from
// ParseConstraints, so nothing here can fail.
func compile(cs []Constraint) []rule {
	rules := make([]rule, 0, len(cs))
	for _, c := range cs {
		r := rule{Constraint: c, attr: attributeOf(c.Field)}
		switch c.Operator {
		case Like, Unlike:
			r.re, _ = anchored(c.Value)
		case MaxPer, GroupBy:
			r.n, _ = strconv.Atoi(c.Value)
		}
		rules = append(rules, r)
	}
	return rules
}

// attributeOf maps a constraint field to an agent attribute name, or "" for
// the hostname. Marathon's pseudo-attributes @region and @zone are plain
// attributes in atoll.
func attributeOf(field string) string {
	switch field {
	case "hostname", "@hostname":
		return ""
	case "@region":
		return "region"
	case "@zone":
		return "zone"
	}
	return field
}

// site is where an instance runs, or would run, as constraints see it.
type site struct {
	agentID string
	host    string
	attrs   map[string]string
}

func agentSite(a events.Agent) site {
	return site{agentID: a.ID, host: a.Hostname, attrs: a.Attributes}
}

// taskSite takes the attributes from the task's agent. A task whose agent
// left the state has no attributes, so only hostname constraints see it.
func taskSite(s *events.State, t events.Task) site {
	a, ok := s.Agents[t.AgentID]
	host := t.Host
	if host == "" {
		host = a.Hostname
	}
	if !ok {
		return site{agentID: t.AgentID, host: host}
	}
	return site{agentID: t.AgentID, host: host, attrs: a.Attributes}
}

// value reads the rule's field at a site; ok is false when the agent lacks
// the attribute.
func (r rule) value(at site) (v string, ok bool) {
	if r.attr == "" {
		return at.host, true
	}
	v, ok = at.attrs[r.attr]
	return v, ok
}

// tally counts instances per value of the rule's field.
type tally struct {
	count map[string]int // instances per value; those lacking the field are not here
	total int            // all instances, with or without the field
}

func (r rule) tally(sites []site) tally {
	t := tally{count: map[string]int{}, total: len(sites)}
	for _, at := range sites {
		if v, ok := r.value(at); ok {
			t.count[v]++
		}
	}
	return t
}

// refuse says why an agent may not take one more instance of the app, given
// the tally of the instances already placed; "" means it may. known holds
// the field's values on all active agents, so that GROUP_BY also counts the
// groups that have no instance yet. The text completes "N of M agents ...".
func (r rule) refuse(at site, placed tally, known map[string]bool) string {
	v, ok := r.value(at)
	if !ok {
		// Marathon: only UNLIKE accepts an agent without the attribute.
		if r.Operator == Unlike {
			return ""
		}
		return "lack attribute " + r.attr
	}
	switch r.Operator {
	case Unique:
		if placed.count[v] > 0 {
			return "already used"
		}
	case Cluster:
		if r.Value != "" && v != r.Value {
			return "have another value"
		}
		// Without a value, the first instance picks it for all the others.
		if r.Value == "" && placed.total > 0 && placed.count[v] != placed.total {
			return "differ from where the app runs"
		}
	case GroupBy:
		return r.refuseGroup(v, placed, known)
	case Like:
		if !r.re.MatchString(v) {
			return "do not match"
		}
	case Unlike:
		if r.re.MatchString(v) {
			return "match"
		}
	case MaxPer:
		if placed.count[v] >= r.n {
			return fmt.Sprintf("already hold %d", r.n)
		}
	case Is:
		if v != r.Value {
			return "have another value"
		}
	}
	return ""
}

// refuseGroup spreads evenly: an instance goes to a group with the fewest.
// While fewer groups exist than the GROUP_BY value asks for, only empty
// groups are accepted, as Marathon does while it waits for offers from new
// groups.
func (r rule) refuseGroup(v string, placed tally, known map[string]bool) string {
	groups := len(known)
	fewest := -1
	for g := range known {
		if fewest < 0 || placed.count[g] < fewest {
			fewest = placed.count[g]
		}
	}
	for g, c := range placed.count {
		if !known[g] {
			groups++
			fewest = min(fewest, c)
		}
	}
	fewest = max(fewest, 0)
	if groups < r.n {
		if placed.count[v] > 0 {
			return fmt.Sprintf("are in a used group while fewer than %d groups exist", r.n)
		}
		return ""
	}
	if placed.count[v] > fewest {
		return "are in a fuller group than others"
	}
	return ""
}

// violated reports whether an instance at this site breaks the rule, given
// the tally of all the app's instances including this one. It drives the
// choice of which task to kill, so it asks "would removing it help".
func (r rule) violated(at site, all tally) bool {
	v, ok := r.value(at)
	if !ok {
		return r.Operator != Unlike
	}
	switch r.Operator {
	case Unique:
		return all.count[v] > 1
	case Cluster:
		if r.Value != "" {
			return v != r.Value
		}
		return v != all.majority()
	case GroupBy:
		// Kill from the fullest group while the groups are uneven.
		lo, hi := all.bounds()
		return hi > lo && all.count[v] == hi
	case Like:
		return !r.re.MatchString(v)
	case Unlike:
		return r.re.MatchString(v)
	case MaxPer:
		return all.count[v] > r.n
	case Is:
		return v != r.Value
	}
	return false
}

// majority is the most common value, the smallest on a tie, so that a
// CLUSTER app split across values keeps its largest part.
func (t tally) majority() string {
	best, most := "", 0
	for v, c := range t.count {
		if c > most || (c == most && v < best) {
			best, most = v, c
		}
	}
	return best
}

// bounds returns the smallest and largest group sizes.
func (t tally) bounds() (lo, hi int) {
	first := true
	for _, c := range t.count {
		if first {
			lo, hi, first = c, c, false
		}
		lo, hi = min(lo, c), max(hi, c)
	}
	return lo, hi
}

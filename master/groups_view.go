package master

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/atollhq/atoll/events"
)

// The group tree as GET /v2/groups shows it, made from one read view (no
// lock): the root, every group with a record, and every group an app id
// implies (an app /a/b/c lives in group /a/b).

// groupNode is one group of the tree.
type groupNode struct {
	id      string
	deps    []string
	version time.Time
	record  *events.Group
	apps    []*appEntry // sorted by id
	groups  []*groupNode
}

// groupTree is every group of the view, by id.
func groupTree(v *readView) map[string]*groupNode {
	nodes := map[string]*groupNode{}
	var ensure func(id string) *groupNode
	ensure = func(id string) *groupNode {
		if n, ok := nodes[id]; ok {
			return n
		}
		n := &groupNode{id: id}
		nodes[id] = n
		if id != rootGroupID {
			p := ensure(parentOf(id))
			p.groups = append(p.groups, n)
		}
		return n
	}
	ensure(rootGroupID)
	for id, g := range v.groups {
		n := ensure(id)
		g := g
		n.record, n.deps, n.version = &g, g.Dependencies, g.Version
	}
	for _, e := range v.apps { // sorted: each group's apps stay sorted
		if e.app != nil {
			p := ensure(parentOf(e.id))
			p.apps = append(p.apps, e)
		}
	}
	var version func(n *groupNode) time.Time
	version = func(n *groupNode) time.Time {
		slices.SortFunc(n.groups, func(a, b *groupNode) int { return strings.Compare(a.id, b.id) })
		for _, e := range n.apps {
			if e.app.Version.After(n.version) {
				n.version = e.app.Version
			}
		}
		for _, c := range n.groups {
			if cv := version(c); cv.After(n.version) {
				n.version = cv
			}
		}
		return n.version
	}
	version(nodes[rootGroupID])
	for _, n := range nodes {
		if n.version.IsZero() {
			n.version = time.Unix(0, 0) // Marathon's empty root: Timestamp(0)
		}
	}
	return nodes
}

// groupEmbed is what ?embed= asks a group to show, as Marathon's
// InfoEmbedResolver reads it.
type groupEmbed struct {
	groups, apps, pods bool
	// app is what each app shows beyond its definition, counts and
	// deployments (http_embeds.go): group.apps.tasks, .lastTaskFailure,
	// .taskStats, .readiness, .failures.
	app appEmbeds
	// definitions shows each app as its definition alone, without
	// counts or deployments: a group as it was at one of its versions
	// (Marathon's selectGroupVersion embeds no app status).
	definitions bool
	// extras are each app's encoded app embeds, made by encode, or its
	// definition's JSON with definitions.
	extras map[*appEntry][]byte
	now    time.Time
}

// groupEmbedOf reads the embed parameters; none means Marathon's default:
// groups, apps and pods. Apps are shown only with group.apps (§0.5 of
// MARATHON_API.md): group.apps.tasks alone shows none.
func groupEmbedOf(values []string, now time.Time) groupEmbed {
	e := groupEmbed{extras: map[*appEntry][]byte{}, now: now}
	if len(values) == 0 {
		e.groups, e.apps, e.pods = true, true, true
		return e
	}
	for _, v := range values {
		switch v {
		case "group.groups":
			e.groups = true
		case "group.apps":
			e.apps = true
		case "group.pods":
			e.pods = true
		case "group.apps.tasks":
			e.app.tasks = true
		case "group.apps.failures":
			e.app.tasks, e.app.lastTaskFailure = true, true
		case "group.apps.lastTaskFailure":
			e.app.lastTaskFailure = true
		case "group.apps.taskStats":
			e.app.taskStats = true
		case "group.apps.readiness":
			e.app.readiness = true
		}
		// group.apps.counts and .deployments: atoll's app views always
		// carry both.
	}
	return e
}

// encode makes, once each, the JSON of the apps the answer will hold, and
// returns the answer's approximate size; an app that cannot be encoded
// is an error before any byte is written.
func (n *groupNode) encode(e groupEmbed) (int, error) {
	size := 128 + len(n.id)
	if e.apps {
		for _, a := range n.apps {
			if e.definitions {
				def, err := json.Marshal(appDefinitionOf(*a.app))
				if err != nil {
					return 0, fmt.Errorf("encode app %s: %w", a.id, err)
				}
				e.extras[a] = def
				size += len(def) + 1
				continue
			}
			if err := a.encode(e.app.tasks); err != nil {
				return 0, err
			}
			x, err := a.extras(e.app, e.now)
			if err != nil {
				return 0, err
			}
			e.extras[a] = x
			size += len(a.json) + 1 + len(x)
			if e.app.tasks {
				size += len(a.tasks.json) + len(`,"tasks":[]`)
			}
		}
	}
	if e.groups {
		for _, c := range n.groups {
			s, err := c.encode(e)
			if err != nil {
				return 0, err
			}
			size += s
		}
	}
	return size, nil
}

// write writes the group as Marathon's GroupInfo; encode must have run.
func (n *groupNode) write(out jsonAnswer, e groupEmbed) {
	id, _ := json.Marshal(n.id)
	deps, _ := json.Marshal(nonNil(n.deps))
	ver, _ := json.Marshal(jsonTime(n.version))
	out.WriteString(`{"id":`)
	out.Write(id)
	out.WriteString(`,"dependencies":`)
	out.Write(deps)
	out.WriteString(`,"version":`)
	out.Write(ver)
	if e.apps {
		out.WriteString(`,"apps":[`)
		for i, a := range n.apps {
			if i > 0 {
				out.WriteByte(',')
			}
			if e.definitions {
				out.Write(e.extras[a])
				continue
			}
			out.app(a, e.app.tasks, e.extras[a])
		}
		out.WriteByte(']')
	}
	if e.groups {
		out.WriteString(`,"groups":[`)
		for i, c := range n.groups {
			if i > 0 {
				out.WriteByte(',')
			}
			c.write(out, e)
		}
		out.WriteByte(']')
	}
	if e.pods {
		out.WriteString(`,"pods":[]`)
	}
	out.WriteByte('}')
}

// versions are the group's versions, newest first: its record's, or the
// one version a group without a record has.
func (n *groupNode) versions() []jsonTime {
	out := []jsonTime{}
	if n.record != nil {
		for _, v := range n.record.Versions {
			out = append(out, jsonTime(v))
		}
	}
	if len(out) == 0 || !time.Time(out[0]).Equal(n.version) {
		out = append([]jsonTime{jsonTime(n.version)}, out...)
	}
	return out
}

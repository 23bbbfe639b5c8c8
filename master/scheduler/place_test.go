package scheduler

import (
	"reflect"
	"testing"

	"github.com/atollhq/atoll/events"
)

// placeCase places n instances of an app and names the agents it expects,
// in placement order, and the reason for any it could not place.
type placeCase struct {
	name   string
	agents []events.Agent
	tasks  []events.Task
	app    events.App
	n      int
	want   []string
	reason string
}

func runPlace(t *testing.T, tests []placeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Place(cluster(tt.agents, tt.tasks...), tt.app, tt.n)
			var got []string
			for _, p := range res.Placements {
				got = append(got, p.AgentID)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("placed on %v, want %v", got, tt.want)
			}
			if want := tt.n - len(tt.want); res.Unplaced != want {
				t.Errorf("unplaced %d, want %d", res.Unplaced, want)
			}
			if res.Reason != tt.reason {
				t.Errorf("reason %q\n          want %q", res.Reason, tt.reason)
			}
		})
	}
}

// Racks for constraint tests: a and b share r1, c is alone on r2.
var racks = agents(agent("a", "rack", "r1"), agent("b", "rack", "r1"), agent("c", "rack", "r2"))

func TestPlaceSpread(t *testing.T) {
	runPlace(t, []placeCase{
		{
			name:   "regions first, then agents, then id",
			agents: agents(agent("a", "region", "eu"), agent("b", "region", "eu"), agent("c", "region", "us")),
			app:    app("/web"), n: 3,
			want: []string{"a", "c", "b"},
		},
		{
			name:   "existing tasks count for the spread",
			agents: agents(agent("a", "region", "eu"), agent("b", "region", "us")),
			tasks:  []events.Task{task("t1", "/web", "a", 0)},
			app:    app("/web"), n: 1,
			want: []string{"b"},
		},
		{
			name:   "other apps' tasks do not count for the spread",
			agents: agents(agent("a"), agent("b")),
			tasks:  []events.Task{task("t1", "/other", "a", 0)},
			app:    app("/web"), n: 1,
			want: []string{"b"}, // b has more free cpus
		},
		{
			name:   "most free cpus",
			agents: agents(sized(agent("a"), 2, 4096, 10000), agent("b")),
			app:    app("/web"), n: 1,
			want: []string{"b"},
		},
		{
			name:   "nothing to place",
			agents: agents(agent("a")),
			app:    app("/web"), n: 0,
		},
	})
}

func TestPlaceUnique(t *testing.T) {
	unique := []string{"hostname", "UNIQUE"}
	runPlace(t, []placeCase{
		{
			name:   "3 instances on 3 agents, the 4th unplaced",
			agents: agents(agent("a"), agent("b"), agent("c")),
			app:    app("/web", unique), n: 4,
			want:   []string{"a", "b", "c"},
			reason: "no agent satisfies constraint [hostname UNIQUE] (3 of 3 agents already used)",
		},
		{
			name:   "existing tasks hold their host",
			agents: agents(agent("a"), agent("b"), agent("c")),
			tasks:  []events.Task{task("t1", "/web", "a", 0)},
			app:    app("/web", unique), n: 2,
			want: []string{"b", "c"},
		},
		{
			// The task's own host still counts when its agent left the state.
			name:   "a task whose agent is gone keeps its host",
			agents: agents(agent("a"), agent("b")),
			tasks:  []events.Task{func() events.Task { t := task("t1", "/web", "x", 0); t.Host = "host-a"; return t }()},
			app:    app("/web", unique), n: 1,
			want: []string{"b"},
		},
		{
			name:   "tasks that are not active hold nothing",
			agents: agents(agent("a")),
			tasks:  []events.Task{withState(task("t1", "/web", "a", 0), events.TaskUnreachable)},
			app:    app("/web", unique), n: 1,
			want: []string{"a"},
		},
		{
			name:   "@hostname is the hostname",
			agents: agents(agent("a"), agent("b")),
			app:    app("/web", []string{"@hostname", "UNIQUE"}), n: 3,
			want:   []string{"a", "b"},
			reason: "no agent satisfies constraint [@hostname UNIQUE] (2 of 2 agents already used)",
		},
		{
			name:   "attribute: one per rack, agents without it refused",
			agents: append(agents(agent("d")), racks...),
			app:    app("/web", []string{"rack", "UNIQUE"}), n: 3,
			want:   []string{"a", "c"},
			reason: "no agent fits: constraint [rack UNIQUE] (3 of 4 agents already used); constraint [rack UNIQUE] (1 of 4 agents lack attribute rack)",
		},
	})
}

func TestPlaceCluster(t *testing.T) {
	runPlace(t, []placeCase{
		{
			name:   "hostname with value",
			agents: racks,
			app:    app("/web", []string{"hostname", "CLUSTER", "host-b"}), n: 2,
			want: []string{"b", "b"},
		},
		{
			name:   "attribute with value",
			agents: racks,
			app:    app("/web", []string{"rack", "CLUSTER", "r2"}), n: 1,
			want: []string{"c"},
		},
		{
			name:   "attribute with a value no agent has",
			agents: racks,
			app:    app("/web", []string{"rack", "CLUSTER", "r9"}), n: 1,
			reason: "no agent satisfies constraint [rack CLUSTER r9] (3 of 3 agents have another value)",
		},
		{
			name:   "without value the first instance picks the rack",
			agents: racks,
			app:    app("/web", []string{"rack", "CLUSTER"}), n: 2,
			want: []string{"a", "b"},
		},
		{
			name:   "without value existing tasks pick the rack",
			agents: racks,
			tasks:  []events.Task{task("t1", "/web", "c", 0)},
			app:    app("/web", []string{"rack", "CLUSTER"}), n: 2,
			want: []string{"c", "c"},
		},
		{
			name:   "without value existing tasks pick the host",
			agents: racks,
			tasks:  []events.Task{task("t1", "/web", "b", 0)},
			app:    app("/web", []string{"hostname", "CLUSTER"}), n: 1,
			want: []string{"b"},
		},
		{
			name:   "without value and the cluster's host full",
			agents: agents(sized(agent("a"), 1, 4096, 10000), agent("b")),
			tasks:  []events.Task{task("t1", "/web", "a", 0)},
			app:    app("/web", []string{"hostname", "CLUSTER"}), n: 1,
			reason: "no agent fits: constraint [hostname CLUSTER] (1 of 2 agents differ from where the app runs); not enough cpus (1 of 2 agents)",
		},
	})
}

func TestPlaceGroupBy(t *testing.T) {
	runPlace(t, []placeCase{
		{
			name:   "attribute without value spreads evenly",
			agents: racks,
			app:    app("/web", []string{"rack", "GROUP_BY"}), n: 4,
			want: []string{"a", "c", "b", "c"},
		},
		{
			name:   "existing tasks fill a group",
			agents: racks,
			tasks:  []events.Task{task("t1", "/web", "a", 0), task("t2", "/web", "b", 1)},
			app:    app("/web", []string{"rack", "GROUP_BY"}), n: 1,
			want: []string{"c"},
		},
		{
			name:   "hostname",
			agents: agents(agent("a"), agent("b")),
			tasks:  []events.Task{task("t1", "/web", "a", 0), task("t2", "/web", "a", 1)},
			app:    app("/web", []string{"hostname", "GROUP_BY"}), n: 3,
			want: []string{"b", "b", "a"},
		},
		{
			name:   "the emptiest group full refuses the others",
			agents: agents(agent("a", "rack", "r1"), sized(agent("b", "rack", "r2"), 0.5, 4096, 10000)),
			tasks:  []events.Task{task("t1", "/web", "a", 0)},
			app:    app("/web", []string{"rack", "GROUP_BY"}), n: 1,
			reason: "no agent fits: constraint [rack GROUP_BY] (1 of 2 agents are in a fuller group than others); not enough cpus (1 of 2 agents)",
		},
		{
			name:   "with value, enough groups",
			agents: racks,
			app:    app("/web", []string{"rack", "GROUP_BY", "2"}), n: 3,
			want: []string{"a", "c", "b"},
		},
		{
			name:   "with value, too few groups: only empty ones",
			agents: racks,
			app:    app("/web", []string{"rack", "GROUP_BY", "3"}), n: 3,
			want:   []string{"a", "c"},
			reason: "no agent satisfies constraint [rack GROUP_BY 3] (3 of 3 agents are in a used group while fewer than 3 groups exist)",
		},
	})
}

func TestPlaceLikeUnlike(t *testing.T) {
	anchors := agents(agent("a", "rack", "rack-1"), agent("b", "rack", "rack-10"), agent("c"))
	runPlace(t, []placeCase{
		{
			name:   "hostname like",
			agents: anchors,
			app:    app("/web", []string{"hostname", "LIKE", "host-[ab]"}), n: 2,
			want: []string{"a", "b"},
		},
		{
			name:   "like is anchored: rack-1 does not match rack-10",
			agents: anchors,
			app:    app("/web", []string{"rack", "LIKE", "rack-1"}), n: 2,
			want: []string{"a", "a"},
		},
		{
			name:   "like refuses",
			agents: anchors,
			app:    app("/web", []string{"rack", "LIKE", "rack-2"}), n: 1,
			reason: "no agent fits: constraint [rack LIKE rack-2] (2 of 3 agents do not match); constraint [rack LIKE rack-2] (1 of 3 agents lack attribute rack)",
		},
		{
			name:   "hostname unlike",
			agents: anchors,
			app:    app("/web", []string{"hostname", "UNLIKE", "host-[ab]"}), n: 1,
			want: []string{"c"},
		},
		{
			name:   "unlike is anchored and accepts a missing attribute",
			agents: anchors,
			app:    app("/web", []string{"rack", "UNLIKE", "rack-1"}), n: 2,
			want: []string{"b", "c"},
		},
		{
			name:   "unlike refuses",
			agents: anchors[:2],
			app:    app("/web", []string{"rack", "UNLIKE", "rack-.*"}), n: 1,
			reason: "no agent satisfies constraint [rack UNLIKE rack-.*] (2 of 2 agents match)",
		},
	})
}

func TestPlaceMaxPer(t *testing.T) {
	runPlace(t, []placeCase{
		{
			name:   "hostname",
			agents: agents(agent("a"), agent("b")),
			app:    app("/web", []string{"hostname", "MAX_PER", "2"}), n: 5,
			want:   []string{"a", "b", "a", "b"},
			reason: "no agent satisfies constraint [hostname MAX_PER 2] (2 of 2 agents already hold 2)",
		},
		{
			name:   "attribute, counting existing tasks",
			agents: racks,
			tasks:  []events.Task{task("t1", "/web", "a", 0)},
			app:    app("/web", []string{"rack", "MAX_PER", "2"}), n: 4,
			want:   []string{"b", "c", "c"},
			reason: "no agent satisfies constraint [rack MAX_PER 2] (3 of 3 agents already hold 2)",
		},
	})
}

func TestPlaceIs(t *testing.T) {
	runPlace(t, []placeCase{
		{
			name:   "hostname",
			agents: racks,
			app:    app("/web", []string{"hostname", "IS", "host-b"}), n: 1,
			want: []string{"b"},
		},
		{
			name:   "attribute",
			agents: racks,
			app:    app("/web", []string{"rack", "IS", "r2"}), n: 1,
			want: []string{"c"},
		},
		{
			name:   "@zone is the zone attribute",
			agents: agents(agent("a", "zone", "z1"), agent("b", "zone", "z2")),
			app:    app("/web", []string{"@zone", "IS", "z2"}), n: 1,
			want: []string{"b"},
		},
		{
			name:   "@region is the region attribute",
			agents: agents(agent("a", "region", "eu"), agent("b", "region", "us")),
			app:    app("/web", []string{"@region", "IS", "us"}), n: 1,
			want: []string{"b"},
		},
		{
			name:   "refuses",
			agents: racks,
			app:    app("/web", []string{"rack", "IS", "r"}), n: 1,
			reason: "no agent satisfies constraint [rack IS r] (3 of 3 agents have another value)",
		},
		{
			name:   "constraints combine",
			agents: racks,
			app:    app("/web", []string{"rack", "IS", "r1"}, []string{"hostname", "UNIQUE"}), n: 3,
			want:   []string{"a", "b"},
			reason: "no agent fits: constraint [rack IS r1] (1 of 3 agents have another value); constraint [hostname UNIQUE] (2 of 3 agents already used)",
		},
	})
}

func TestPlaceResources(t *testing.T) {
	big := app("/big")
	big.Mem, big.Disk = 1000, 4000
	runPlace(t, []placeCase{
		{
			name:   "cpus run out",
			agents: agents(agent("a")),
			app:    app("/web"), n: 5,
			want:   []string{"a", "a", "a", "a"},
			reason: "not enough cpus (1 of 1 agents)",
		},
		{
			name:   "other apps' tasks hold resources",
			agents: agents(sized(agent("a"), 2, 4096, 10000)),
			tasks:  []events.Task{task("t1", "/other", "a", 0)},
			app:    app("/web"), n: 2,
			want:   []string{"a"},
			reason: "not enough cpus (1 of 1 agents)",
		},
		{
			name:   "mem and disk",
			agents: agents(agent("a"), sized(agent("b"), 4, 512, 10000)),
			app:    big, n: 3,
			want:   []string{"a", "a"},
			reason: "no agent fits: not enough disk (1 of 2 agents); not enough mem (1 of 2 agents)",
		},
		{
			name:   "several resources short on one agent",
			agents: agents(sized(agent("a"), 0.5, 100, 10000)),
			app:    app("/web"), n: 1,
			reason: "not enough cpus/mem (1 of 1 agents)",
		},
		{
			name:   "inactive agents are not used",
			agents: agents(func() events.Agent { a := agent("a"); a.State = events.AgentUnreachable; return a }()),
			app:    app("/web"), n: 1,
			reason: "no active agents",
		},
		{
			name:   "invalid constraints place nothing",
			agents: agents(agent("a")),
			app:    app("/web", []string{"hostname", "UNIQUE", "x"}), n: 2,
			reason: "invalid constraints: /constraints(0): UNIQUE does not accept a value",
		},
	})
}

// Ports are the lowest the agent offers that no active task holds and that
// this call has not chosen already.
func TestPlacePorts(t *testing.T) {
	twoPorts := app("/web")
	twoPorts.PortDefinitions = []events.PortDefinition{{Port: 10000}, {Port: 10001}}
	required := app("/web")
	required.PortDefinitions = []events.PortDefinition{{Port: 31005}}
	required.RequirePorts = true
	outside := required
	outside.PortDefinitions = []events.PortDefinition{{Port: 80}}
	// A bridged app: one host port per port mapping, 0 any, else that one;
	// its service ports and port definitions place nothing.
	bridged := app("/echo")
	bridged.Networks = []events.Network{{Mode: events.NetworkBridge}}
	bridged.PortDefinitions = []events.PortDefinition{{Port: 31000}}
	bridged.RequirePorts = true
	bridged.Container = &events.Container{Type: events.ContainerDocker, Docker: &events.Docker{Image: "e"},
		PortMappings: []events.PortMapping{{ContainerPort: 80, ServicePort: 31001}, {ContainerPort: 81, HostPort: 31000}}}

	tests := []struct {
		name   string
		agents []events.Agent
		tasks  []events.Task
		app    events.App
		n      int
		want   []Placement
		reason string
	}{
		{
			name:   "lowest free, skipping held ports",
			agents: agents(ported(agent("a"), events.PortRange{Begin: 31000, End: 31004})),
			tasks:  []events.Task{withPorts(task("t1", "/other", "a", 0), 31000, 31002)},
			app:    twoPorts, n: 2,
			want:   []Placement{{AgentID: "a", Host: "host-a", IP: "10.0.0.a", Ports: []int{31001, 31003}}},
			reason: "not enough ports (1 of 1 agents)",
		},
		{
			name:   "ranges in any order",
			agents: agents(ported(agent("a"), events.PortRange{Begin: 32000, End: 32000}, events.PortRange{Begin: 31000, End: 31000})),
			app:    twoPorts, n: 1,
			want: []Placement{{AgentID: "a", Host: "host-a", IP: "10.0.0.a", Ports: []int{31000, 32000}}},
		},
		{
			name:   "tasks that are not active hold no ports",
			agents: agents(ported(agent("a"), events.PortRange{Begin: 31000, End: 31001})),
			tasks:  []events.Task{withPorts(withState(task("t1", "/other", "a", 0), events.TaskUnreachable), 31000, 31001)},
			app:    twoPorts, n: 1,
			want: []Placement{{AgentID: "a", Host: "host-a", IP: "10.0.0.a", Ports: []int{31000, 31001}}},
		},
		{
			name:   "no port definitions, no ports",
			agents: agents(agent("a")),
			app:    app("/web"), n: 1,
			want: []Placement{{AgentID: "a", Host: "host-a", IP: "10.0.0.a", Ports: []int{}}},
		},
		{
			name:   "requirePorts takes the service port where it is free",
			agents: agents(agent("a"), agent("b")),
			tasks:  []events.Task{withPorts(task("t1", "/other", "a", 0), 31005)},
			app:    required, n: 3,
			want:   []Placement{{AgentID: "b", Host: "host-b", IP: "10.0.0.b", Ports: []int{31005}}},
			reason: "not enough ports (2 of 2 agents)",
		},
		{
			name:   "bridged: a dynamic port never takes a port another mapping fixes",
			agents: agents(agent("a"), agent("b")),
			tasks:  []events.Task{withPorts(task("t1", "/other", "b", 0), 31000)},
			app:    bridged, n: 2,
			want:   []Placement{{AgentID: "a", Host: "host-a", IP: "10.0.0.a", Ports: []int{31001, 31000}}},
			reason: "not enough ports (2 of 2 agents)",
		},
		{
			name:   "requirePorts outside the agent's ranges",
			agents: agents(agent("a")),
			app:    outside, n: 1,
			reason: "not enough ports (1 of 1 agents)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Place(cluster(tt.agents, tt.tasks...), tt.app, tt.n)
			if !reflect.DeepEqual(res.Placements, tt.want) {
				t.Errorf("placements %+v, want %+v", res.Placements, tt.want)
			}
			if res.Reason != tt.reason {
				t.Errorf("reason %q, want %q", res.Reason, tt.reason)
			}
		})
	}
}

// Place reads the state and never writes it.
func TestPlaceLeavesStateAlone(t *testing.T) {
	s := cluster(agents(agent("a")), task("t1", "/web", "a", 0))
	s.Reindex() // as Clone does, so that DeepEqual compares like with like
	before := s.Clone()
	Place(s, app("/web", []string{"hostname", "MAX_PER", "3"}), 2)
	if !reflect.DeepEqual(s, before) {
		t.Fatal("Place changed the state")
	}
}

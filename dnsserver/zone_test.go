package dnsserver

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/miekg/dns"
)

func TestZoneRecords(t *testing.T) {
	s := fixture(t)
	z := BuildZone(s, testConfig)
	// Hashes: z-base-32 of SHA-1 of the task ids, checked with an independent
	// implementation: group_app01.1 zn545, group_app01.2 meigs, own.1 xkhje,
	// web.1 e844k.
	want := []string{
		"1.0.0.10.in-addr.arpa. 5 IN PTR agent-1.slave.mesos.",
		"2.0.0.10.in-addr.arpa. 5 IN PTR agent-2.slave.mesos.",
		"5.5.168.192.in-addr.arpa. 5 IN PTR own.marathon.mesos.",
		"_app01-group._tcp.marathon.mesos. 5 IN SRV 0 1 31000 app01-group-zn545-s1.marathon.mesos.",
		"_app01-group._tcp.marathon.mesos. 5 IN SRV 0 1 31001 app01-group-zn545-s1.marathon.mesos.",
		"_app01-group._tcp.marathon.mesos. 5 IN SRV 0 1 31002 app01-group-meigs-s2.marathon.mesos.",
		"_app01-group._tcp.marathon.mesos. 5 IN SRV 0 1 31003 app01-group-meigs-s2.marathon.mesos.",
		"_app01-group._tcp.marathon.slave.mesos. 5 IN SRV 0 1 31000 app01-group-zn545-s1.marathon.slave.mesos.",
		"_app01-group._tcp.marathon.slave.mesos. 5 IN SRV 0 1 31001 app01-group-zn545-s1.marathon.slave.mesos.",
		"_app01-group._tcp.marathon.slave.mesos. 5 IN SRV 0 1 31002 app01-group-meigs-s2.marathon.slave.mesos.",
		"_app01-group._tcp.marathon.slave.mesos. 5 IN SRV 0 1 31003 app01-group-meigs-s2.marathon.slave.mesos.",
		"_app01-group._udp.marathon.mesos. 5 IN SRV 0 1 31001 app01-group-zn545-s1.marathon.mesos.",
		"_app01-group._udp.marathon.mesos. 5 IN SRV 0 1 31003 app01-group-meigs-s2.marathon.mesos.",
		"_app01-group._udp.marathon.slave.mesos. 5 IN SRV 0 1 31000 app01-group-zn545-s1.marathon.slave.mesos.",
		"_app01-group._udp.marathon.slave.mesos. 5 IN SRV 0 1 31001 app01-group-zn545-s1.marathon.slave.mesos.",
		"_app01-group._udp.marathon.slave.mesos. 5 IN SRV 0 1 31002 app01-group-meigs-s2.marathon.slave.mesos.",
		"_app01-group._udp.marathon.slave.mesos. 5 IN SRV 0 1 31003 app01-group-meigs-s2.marathon.slave.mesos.",
		"_app01.group._tcp.marathon.mesos. 5 IN SRV 0 1 31000 app01.group-zn545-s1.marathon.mesos.",
		"_app01.group._tcp.marathon.mesos. 5 IN SRV 0 1 31001 app01.group-zn545-s1.marathon.mesos.",
		"_app01.group._tcp.marathon.mesos. 5 IN SRV 0 1 31002 app01.group-meigs-s2.marathon.mesos.",
		"_app01.group._tcp.marathon.mesos. 5 IN SRV 0 1 31003 app01.group-meigs-s2.marathon.mesos.",
		"_app01.group._tcp.marathon.slave.mesos. 5 IN SRV 0 1 31000 app01.group-zn545-s1.marathon.slave.mesos.",
		"_app01.group._tcp.marathon.slave.mesos. 5 IN SRV 0 1 31001 app01.group-zn545-s1.marathon.slave.mesos.",
		"_app01.group._tcp.marathon.slave.mesos. 5 IN SRV 0 1 31002 app01.group-meigs-s2.marathon.slave.mesos.",
		"_app01.group._tcp.marathon.slave.mesos. 5 IN SRV 0 1 31003 app01.group-meigs-s2.marathon.slave.mesos.",
		"_app01.group._udp.marathon.mesos. 5 IN SRV 0 1 31001 app01.group-zn545-s1.marathon.mesos.",
		"_app01.group._udp.marathon.mesos. 5 IN SRV 0 1 31003 app01.group-meigs-s2.marathon.mesos.",
		"_app01.group._udp.marathon.slave.mesos. 5 IN SRV 0 1 31000 app01.group-zn545-s1.marathon.slave.mesos.",
		"_app01.group._udp.marathon.slave.mesos. 5 IN SRV 0 1 31001 app01.group-zn545-s1.marathon.slave.mesos.",
		"_app01.group._udp.marathon.slave.mesos. 5 IN SRV 0 1 31002 app01.group-meigs-s2.marathon.slave.mesos.",
		"_app01.group._udp.marathon.slave.mesos. 5 IN SRV 0 1 31003 app01.group-meigs-s2.marathon.slave.mesos.",
		"_framework._tcp.marathon.mesos. 5 IN SRV 0 1 8080 marathon.mesos.",
		"_leader._tcp.mesos. 5 IN SRV 0 1 8080 leader.mesos.",
		"_leader._udp.mesos. 5 IN SRV 0 1 8080 leader.mesos.",
		"_slave._tcp.mesos. 5 IN SRV 0 1 5051 slave.mesos.",
		"_own._tcp.marathon.slave.mesos. 5 IN SRV 0 1 8053 own-xkhje-s1.marathon.slave.mesos.",
		"_own._udp.marathon.mesos. 5 IN SRV 0 1 8053 own-xkhje-s1.marathon.mesos.",
		"_own._udp.marathon.slave.mesos. 5 IN SRV 0 1 8053 own-xkhje-s1.marathon.slave.mesos.",
		"_web._tcp.marathon.mesos. 5 IN SRV 0 1 31010 web-e844k-s1.marathon.mesos.",
		"_web._tcp.marathon.slave.mesos. 5 IN SRV 0 1 31010 web-e844k-s1.marathon.slave.mesos.",
		"_web._udp.marathon.slave.mesos. 5 IN SRV 0 1 31010 web-e844k-s1.marathon.slave.mesos.",
		"agent-1.slave.mesos. 5 IN A 10.0.0.1",
		"agent-2.slave.mesos. 5 IN A 10.0.0.2",
		"app01-group-meigs-s2.marathon.mesos. 5 IN A 10.0.0.2",
		"app01-group-meigs-s2.marathon.slave.mesos. 5 IN A 10.0.0.2",
		"app01-group-zn545-s1.marathon.mesos. 5 IN A 10.0.0.1",
		"app01-group-zn545-s1.marathon.slave.mesos. 5 IN A 10.0.0.1",
		"app01-group.marathon.mesos. 5 IN A 10.0.0.1",
		"app01-group.marathon.mesos. 5 IN A 10.0.0.2",
		"app01-group.marathon.slave.mesos. 5 IN A 10.0.0.1",
		"app01-group.marathon.slave.mesos. 5 IN A 10.0.0.2",
		"app01.group-meigs-s2.marathon.mesos. 5 IN A 10.0.0.2",
		"app01.group-meigs-s2.marathon.slave.mesos. 5 IN A 10.0.0.2",
		"app01.group-zn545-s1.marathon.mesos. 5 IN A 10.0.0.1",
		"app01.group-zn545-s1.marathon.slave.mesos. 5 IN A 10.0.0.1",
		"app01.group.marathon.mesos. 5 IN A 10.0.0.1",
		"app01.group.marathon.mesos. 5 IN A 10.0.0.2",
		"app01.group.marathon.slave.mesos. 5 IN A 10.0.0.1",
		"app01.group.marathon.slave.mesos. 5 IN A 10.0.0.2",
		"leader.mesos. 5 IN A 10.0.0.100",
		"marathon.mesos. 5 IN A 10.0.0.100",
		"master.mesos. 5 IN A 10.0.0.100",
		"master0.mesos. 5 IN A 10.0.0.100",
		"mesos. 5 IN NS ns1.mesos.",
		fmt.Sprintf("mesos. 5 IN SOA ns1.mesos. root.ns1.mesos. %d 60 600 86400 5", s.Seq),
		"ns1.mesos. 5 IN A 127.0.0.1",
		"own-xkhje-s1.marathon.mesos. 5 IN A 192.168.5.5",
		"own-xkhje-s1.marathon.slave.mesos. 5 IN A 10.0.0.1",
		"own.marathon.mesos. 5 IN A 192.168.5.5",
		"own.marathon.slave.mesos. 5 IN A 10.0.0.1",
		"slave.mesos. 5 IN A 10.0.0.1",
		"slave.mesos. 5 IN A 10.0.0.2",
		"web-e844k-s1.marathon.mesos. 5 IN A 10.0.0.1",
		"web-e844k-s1.marathon.slave.mesos. 5 IN A 10.0.0.1",
		"web.marathon.mesos. 5 IN A 10.0.0.1",
		"web.marathon.slave.mesos. 5 IN A 10.0.0.1",
	}
	slices.Sort(want)
	recs := z.Records()
	if got := rrStrings(recs); !slices.Equal(got, want) {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if recs[0].Header().Rrtype != dns.TypeSOA {
		t.Errorf("first record is %v, want the SOA", recs[0])
	}
	if z.Len() != len(recs) {
		t.Errorf("Len() = %d, want %d", z.Len(), len(recs))
	}
	if z.SOA().Serial != uint32(s.Seq) {
		t.Errorf("serial %d, want %d", z.SOA().Serial, s.Seq)
	}
}

func TestZoneLookup(t *testing.T) {
	z := BuildZone(fixture(t), testConfig)
	tests := []struct {
		name   string
		qtype  uint16
		exists bool
		answer []string
		extra  []string
	}{
		{"app01.group.marathon.mesos.", dns.TypeA, true, []string{"app01.group.marathon.mesos. 5 IN A 10.0.0.1", "app01.group.marathon.mesos. 5 IN A 10.0.0.2"}, nil},
		{"app01.group.marathon.mesos.", dns.TypeAAAA, true, nil, nil},
		{"_app01.group._udp.marathon.mesos.", dns.TypeSRV, true,
			[]string{"_app01.group._udp.marathon.mesos. 5 IN SRV 0 1 31001 app01.group-zn545-s1.marathon.mesos.", "_app01.group._udp.marathon.mesos. 5 IN SRV 0 1 31003 app01.group-meigs-s2.marathon.mesos."},
			[]string{"app01.group-meigs-s2.marathon.mesos. 5 IN A 10.0.0.2", "app01.group-zn545-s1.marathon.mesos. 5 IN A 10.0.0.1"}},
		{"_app01-group._udp.marathon.slave.mesos.", dns.TypeSRV, true,
			[]string{"_app01-group._udp.marathon.slave.mesos. 5 IN SRV 0 1 31000 app01-group-zn545-s1.marathon.slave.mesos.", "_app01-group._udp.marathon.slave.mesos. 5 IN SRV 0 1 31001 app01-group-zn545-s1.marathon.slave.mesos.", "_app01-group._udp.marathon.slave.mesos. 5 IN SRV 0 1 31002 app01-group-meigs-s2.marathon.slave.mesos.", "_app01-group._udp.marathon.slave.mesos. 5 IN SRV 0 1 31003 app01-group-meigs-s2.marathon.slave.mesos."},
			[]string{"app01-group-meigs-s2.marathon.slave.mesos. 5 IN A 10.0.0.2", "app01-group-zn545-s1.marathon.slave.mesos. 5 IN A 10.0.0.1"}},
		{"_leader._tcp.mesos.", dns.TypeSRV, true, []string{"_leader._tcp.mesos. 5 IN SRV 0 1 8080 leader.mesos."}, []string{"leader.mesos. 5 IN A 10.0.0.100"}},
		{"_framework._tcp.marathon.mesos.", dns.TypeSRV, true, []string{"_framework._tcp.marathon.mesos. 5 IN SRV 0 1 8080 marathon.mesos."}, []string{"marathon.mesos. 5 IN A 10.0.0.100"}},
		// One record however many agents, as Mesos-DNS's.
		{"_slave._tcp.mesos.", dns.TypeSRV, true, []string{"_slave._tcp.mesos. 5 IN SRV 0 1 5051 slave.mesos."}, nil},
		{"mesos.", dns.TypeNS, true, []string{"mesos. 5 IN NS ns1.mesos."}, []string{"ns1.mesos. 5 IN A 127.0.0.1"}},
		{"2.0.0.10.in-addr.arpa.", dns.TypePTR, true, []string{"2.0.0.10.in-addr.arpa. 5 IN PTR agent-2.slave.mesos."}, nil},
		// Empty non-terminals exist: NODATA, not NXDOMAIN.
		{"group.marathon.mesos.", dns.TypeA, true, nil, nil},
		{"_tcp.marathon.mesos.", dns.TypeSRV, true, nil, nil},
		{"group._tcp.marathon.mesos.", dns.TypeSRV, true, nil, nil},
		// SOA and NS only at the apex.
		{"leader.mesos.", dns.TypeSOA, true, nil, nil},
		{"leader.mesos.", dns.TypeNS, true, nil, nil},
		{"nope.marathon.mesos.", dns.TypeA, false, nil, nil},
		{"_nope._tcp.marathon.mesos.", dns.TypeSRV, false, nil, nil},
		{"agent-3.slave.mesos.", dns.TypeA, false, nil, nil},
		{"9.9.9.9.in-addr.arpa.", dns.TypePTR, false, nil, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s", tc.name, dns.TypeToString[tc.qtype]), func(t *testing.T) {
			res := z.Lookup(tc.name, tc.qtype)
			if res.Exists != tc.exists {
				t.Errorf("exists = %v, want %v", res.Exists, tc.exists)
			}
			if got := rrStrings(res.Answer); !slices.Equal(got, tc.answer) {
				t.Errorf("answer %q, want %q", got, tc.answer)
			}
			if got := rrStrings(res.Extra); !slices.Equal(got, tc.extra) {
				t.Errorf("extra %q, want %q", got, tc.extra)
			}
		})
	}
}

func TestZoneInZone(t *testing.T) {
	z := BuildZone(fixture(t), testConfig)
	tests := []struct {
		name string
		want bool
	}{
		{"mesos.", true},
		{"anything.below.mesos.", true},
		{"notmesos.", false},
		{"example.com.", false},
		{"1.0.0.10.in-addr.arpa.", true}, // an agent's reverse name
		{"9.0.0.10.in-addr.arpa.", false},
		{"0.0.10.in-addr.arpa.", false}, // not authoritative for the reverse zones themselves
	}
	for _, tc := range tests {
		if got := z.InZone(tc.name); got != tc.want {
			t.Errorf("InZone(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestZoneTaskLifecycle(t *testing.T) {
	tests := []struct {
		desc   string
		change events.Change
		want   []string // web.marathon.mesos. A after the change
	}{
		{"healthy task of a checked app", events.PutTask(healthy(runningTask("web.2", "/web", "a2-S2", "10.0.0.2", 31011), true)), []string{"10.0.0.1", "10.0.0.2"}},
		{"health unknown", events.PutTask(runningTask("web.1", "/web", "a1-S1", "10.0.0.1", 31010)), nil},
		{"unhealthy", events.PutTask(healthy(runningTask("web.1", "/web", "a1-S1", "10.0.0.1", 31010), false)), nil},
		{"killed", events.PutTask(eventstest.Task("web.1", "/web", "a1-S1", events.TaskKilled)), nil},
		{"removed", events.DeleteTask("web.1"), nil},
		{"killing", events.PutTask(healthy(eventstest.Task("web.1", "/web", "a1-S1", events.TaskKilling), true)), nil},
		{"agent unreachable", events.PutAgent(func() events.Agent {
			a := agent("a1-S1", "agent-1", "10.0.0.1")
			a.State = events.AgentUnreachable
			return a
		}()), nil},
		{"agent removed", events.DeleteAgent("a1-S1"), nil},
		{"app removed", events.DeleteApp("/web"), nil},
		{"health checks dropped", events.PutApp(app("/web", "tcp")), []string{"10.0.0.1", "10.0.0.2"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			s := fixture(t)
			z := BuildZone(s, testConfig)
			e := commit(t, s, tc.change)[0]
			next := z.Apply(s, e)
			var got []string
			for _, rr := range next.Lookup("web.marathon.mesos.", dns.TypeA).Answer {
				got = append(got, rr.(*dns.A).A.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("web.marathon.mesos. A = %v, want %v", got, tc.want)
			}
			if want := rrStrings(BuildZone(s, testConfig).Records()); !slices.Equal(rrStrings(next.Records()), want) {
				t.Errorf("applied zone differs from a rebuild")
			}
		})
	}
}

func TestZoneUnreachableAgentLeavesEverything(t *testing.T) {
	s := fixture(t)
	z := BuildZone(s, testConfig)
	a := agent("a2-S2", "agent-2", "10.0.0.2")
	a.State = events.AgentUnreachable
	z = z.Apply(s, commit(t, s, events.PutAgent(a))[0])
	for _, rr := range z.Records() {
		if strings.Contains(rr.String(), "10.0.0.2") || strings.Contains(rr.String(), "agent-2") {
			t.Errorf("still in the zone: %v", rr)
		}
	}
}

func TestZoneApplyLeavesOldZoneAlone(t *testing.T) {
	s := fixture(t)
	z := BuildZone(s, testConfig)
	before, names := rrStrings(z.Records()), dumpNames(z)
	// Warm the packed answers, which the next zone shares.
	z.Lookup("app01.group.marathon.mesos.", dns.TypeA)
	for _, c := range []events.Change{
		events.PutTask(runningTask("group_app01.9", "/group/app01", "a2-S2", "10.0.0.2", 31020)),
		events.DeleteTask("group_app01.1"),
		events.DeleteApp("/web"),
		events.PutAgent(agent("a1-S1", "renamed", "10.0.0.9")),
		events.PutLeader(events.Leader{ID: "m2", IP: "10.0.0.101", Port: 8080, Epoch: 1}),
	} {
		next := z.Apply(s, commit(t, s, c)[0])
		if got := rrStrings(z.Records()); !slices.Equal(got, before) {
			t.Fatalf("%s %s changed the old zone", c.Type, c.ID)
		}
		if got := dumpNames(z); !slices.Equal(got, names) {
			t.Fatalf("%s %s changed the old zone's names", c.Type, c.ID)
		}
		if slices.Equal(rrStrings(next.Records()), before) {
			t.Fatalf("%s %s changed nothing", c.Type, c.ID)
		}
	}
}

// TestZoneIncrementalEqualsRebuild is the zone's main property: after any
// sequence of events, applying them one by one gives the zone a snapshot of
// the final state builds.
func TestZoneIncrementalEqualsRebuild(t *testing.T) {
	runs, steps := 300, 120
	if testing.Short() {
		runs = 40
	}
	for run := range runs {
		rng := rand.New(rand.NewPCG(uint64(run), 42))
		s := events.NewState()
		z := BuildZone(s, testConfig)
		for step := range steps {
			c := randomChange(rng, s)
			e := commit(t, s, c)[0]
			z = z.Apply(s, e)
			rebuilt := BuildZone(s, testConfig)
			got, want := rrStrings(z.Records()), rrStrings(rebuilt.Records())
			if !slices.Equal(got, want) {
				t.Fatalf("run %d step %d (%s %s): records differ\napplied:\n%s\nrebuilt:\n%s",
					run, step, c.Type, c.ID, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if got, want := dumpNames(z), dumpNames(rebuilt); !slices.Equal(got, want) {
				t.Fatalf("run %d step %d (%s %s): names differ\napplied:\n%s\nrebuilt:\n%s",
					run, step, c.Type, c.ID, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if z.Len() != len(got) {
				t.Fatalf("run %d step %d: Len() = %d, want %d", run, step, z.Len(), len(got))
			}
		}
	}
}

// randomChange draws a change over a small universe, so that names
// collide, agents come and go under their tasks, and apps vanish under
// theirs.
func randomChange(rng *rand.Rand, s *events.State) events.Change {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	agentID := pick("a0-S0", "a1-S1", "a2-S2", "a3-S1")
	appID := pick("/app0", "/g/app1", "/g/app_1", "/h/app1", "/x/y/app2", "/web")
	taskID := fmt.Sprintf("t%d", rng.IntN(24))
	ips := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "fd00::1", "bogus"}
	switch rng.IntN(16) {
	case 0, 1:
		a := agent(agentID, pick("agent-0", "agent-1", "host.example", "", "x.marathon"), pick(ips...))
		a.State = events.AgentState(pick("active", "active", "unreachable", "gone"))
		return events.PutAgent(a)
	case 2:
		return events.DeleteAgent(agentID)
	case 3, 4:
		a := app(appID, slices.Repeat([]string{pick("tcp", "udp", "udp,tcp", "")}, rng.IntN(3))...)
		if rng.IntN(2) == 0 {
			a.HealthChecks = []events.HealthCheck{{Protocol: "TCP"}}
		}
		return events.PutApp(a)
	case 5:
		return events.DeleteApp(appID)
	case 6:
		return events.DeleteTask(taskID)
	case 7:
		return events.PutLeader(events.Leader{ID: "m", IP: pick("10.0.0.100", "fd00::100", "nope"), Port: rng.IntN(2) * 8080, Epoch: 1})
	default:
		if t, ok := s.Tasks[taskID]; ok && rng.IntN(3) > 0 {
			appID = t.AppID // mostly keep a task in its app
		}
		t := runningTask(taskID, appID, agentID, pick(ips...), 31000+rng.IntN(4), 32000+rng.IntN(4))
		switch rng.IntN(4) {
		case 0:
			t.IPAddresses = nil // falls back to the agent's address
		case 1:
			t.IPAddresses = append(t.IPAddresses, events.IPAddress{IPAddress: "fd00::9", Protocol: "IPv6"})
		}
		t.State = events.TaskState(pick("TASK_RUNNING", "TASK_RUNNING", "TASK_RUNNING", "TASK_STAGING", "TASK_KILLED", "TASK_KILLING"))
		if rng.IntN(3) > 0 {
			t = healthy(t, rng.IntN(3) > 0)
		}
		return events.PutTask(t)
	}
}

// TestZoneSharesMemory: equal record sets share one slice, and the zone
// holds one copy of each name and agent name, however many events rebuilt
// them.
func TestZoneSharesMemory(t *testing.T) {
	s := events.NewState()
	commit(t, s,
		events.PutAgent(agent("a1-S1", "agent-1", "10.0.0.1")),
		events.PutAgent(agent("a2-S2", "agent-2", "10.0.0.2")),
		events.PutApp(app("/db", "tcp")),
	)
	z := BuildZone(s, testConfig)
	for _, task := range []events.Task{
		runningTask("db.1", "/db", "a1-S1", "10.0.0.1", 31000),
		runningTask("db.2", "/db", "a2-S2", "10.0.0.2", 31001),
	} {
		z = z.Apply(s, commit(t, s, events.PutTask(task))[0])
	}
	recsOf := func(name string) []rec {
		n, ok := z.names.get(name)
		if !ok || n.data == nil || len(n.data.recs) != 2 {
			t.Fatalf("%s: no records", name)
		}
		return n.data.recs
	}
	if host, slave := recsOf("db.marathon.mesos."), recsOf("db.marathon.slave.mesos."); &host[0] != &slave[0] {
		t.Errorf("db.marathon.mesos. and db.marathon.slave.mesos. hold equal records in two slices")
	}
	e, _ := z.apps.get("/db")
	if len(e.extra) != 0 {
		t.Errorf("/db: names beyond the standard ones: %q", e.extra)
	}
	for _, name := range e.extra {
		if key, _, _ := z.names.getKey(name); unsafe.StringData(key) != unsafe.StringData(name) {
			t.Errorf("%s: the app's copy of the name is not the zone's", name)
		}
	}
	a, _ := z.agents.get("a1-S1")
	ptr, ok := z.names.get("1.0.0.10.in-addr.arpa.")
	if !ok || ptr.data == nil || len(ptr.data.recs) != 1 {
		t.Fatal("1.0.0.10.in-addr.arpa.: no PTR record")
	}
	if r := ptr.data.recs[0]; r.target != a.view.name || unsafe.StringData(r.target) != unsafe.StringData(a.view.name) {
		t.Errorf("PTR target %s is not the agent's name %s, or a copy of it", r.target, a.view.name)
	}
}

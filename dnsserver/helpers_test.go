package dnsserver

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testConfig is the zone config of the tests: Mesos-DNS's defaults.
var testConfig = Config{Addr: "127.0.0.1:0", Domain: "mesos", Framework: "marathon", TTL: 5}

// commit applies changes to s as a leader would, returning the events.
func commit(t testing.TB, s *events.State, changes ...events.Change) []events.Event {
	t.Helper()
	var out []events.Event
	for _, c := range changes {
		e := c.Stamp(s, 1, eventstest.T0.Add(time.Duration(s.Seq+1)*time.Second))
		if err := s.Apply(e); err != nil {
			t.Fatalf("apply %s %s: %v", c.Type, c.ID, err)
		}
		out = append(out, e)
	}
	return out
}

func agent(id, host, ip string) events.Agent {
	a := eventstest.Agent(id)
	a.Hostname, a.IP = host, ip
	return a
}

func app(id string, protocols ...string) events.App {
	a := eventstest.App(id, 1)
	a.PortDefinitions = nil
	for i, p := range protocols {
		a.PortDefinitions = append(a.PortDefinitions, events.PortDefinition{Port: 10000 + i, Protocol: p})
	}
	return a
}

// runningTask is a running task of appID on agentID, reachable at ip (the
// agent's own address in atoll) on ports.
func runningTask(id, appID, agentID, ip string, ports ...int) events.Task {
	t := eventstest.Task(id, appID, agentID, events.TaskRunning)
	t.IPAddresses = []events.IPAddress{{IPAddress: ip, Protocol: "IPv4"}}
	t.Ports = ports
	return t
}

func healthy(t events.Task, h bool) events.Task {
	t.Healthy = &h
	return t
}

// fixture is a small cluster with one of everything:
//
//	leader 10.0.0.100:8080
//	agents agent-1 10.0.0.1, agent-2 10.0.0.2, agent-3 10.0.0.3 (unreachable)
//	/group/app01: tcp and udp,tcp ports; tasks on agent-1 and agent-2, one staging
//	/web: health checks; one healthy task, one unknown, one unhealthy
//	/own: a task with an address of its own
func fixture(t testing.TB) *events.State {
	s := events.NewState()
	web := app("/web", "tcp")
	web.HealthChecks = []events.HealthCheck{{Protocol: "HTTP", Path: "/"}}
	unreachable := agent("a3-S3", "agent-3", "10.0.0.3")
	unreachable.State = events.AgentUnreachable
	commit(t, s,
		events.PutLeader(events.Leader{ID: "m1", Hostname: "m1", IP: "10.0.0.100", Port: 8080, Epoch: 1}),
		events.PutAgent(agent("a1-S1", "agent-1", "10.0.0.1")),
		events.PutAgent(agent("a2-S2", "agent-2", "10.0.0.2")),
		events.PutAgent(unreachable),
		events.PutApp(app("/group/app01", "tcp", "udp,tcp")),
		events.PutApp(web),
		events.PutApp(app("/own", "udp")),
		events.PutTask(runningTask("group_app01.1", "/group/app01", "a1-S1", "10.0.0.1", 31000, 31001)),
		events.PutTask(runningTask("group_app01.2", "/group/app01", "a2-S2", "10.0.0.2", 31002, 31003)),
		events.PutTask(runningTask("group_app01.3", "/group/app01", "a3-S3", "10.0.0.3", 31004, 31005)),
		events.PutTask(eventstest.Task("group_app01.4", "/group/app01", "a1-S1", events.TaskStaging)),
		events.PutTask(healthy(runningTask("web.1", "/web", "a1-S1", "10.0.0.1", 31010), true)),
		events.PutTask(runningTask("web.2", "/web", "a2-S2", "10.0.0.2", 31011)),
		events.PutTask(healthy(runningTask("web.3", "/web", "a2-S2", "10.0.0.2", 31012), false)),
		events.PutTask(runningTask("own.1", "/own", "a1-S1", "192.168.5.5", 8053)),
	)
	return s
}

// rrStrings is records in zone-file form, sorted, TTLs included.
func rrStrings(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	slices.Sort(out)
	return out
}

// dumpNames lists every name of the zone with its below count and record
// count, to compare the structure of two zones.
func dumpNames(z *Zone) []string {
	var out []string
	z.names.each(func(name string, n node) {
		recs := 0
		if n.data != nil {
			recs = len(n.data.recs)
		}
		out = append(out, fmt.Sprintf("%s below=%d recs=%d", name, n.below, recs))
	})
	slices.Sort(out)
	return out
}

// packQuery makes a query packet.
func packQuery(t testing.TB, name string, qtype uint16, edns uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0x1234
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// counterValue reads a Prometheus counter.
func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

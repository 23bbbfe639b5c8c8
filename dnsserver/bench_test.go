package dnsserver

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/atollhq/atoll/events"
	"github.com/miekg/dns"
)

// bigState is a cluster of tasks tasks: apps of 5 tasks each, spread over
// 100 agents, one port each, as the bench/dns load but smaller apps.
func bigState(tb testing.TB, tasks int) *events.State {
	s := events.NewState()
	var changes []events.Change
	changes = append(changes, events.PutLeader(events.Leader{ID: "m1", IP: "10.0.0.100", Port: 8080, Epoch: 1}))
	for i := range 100 {
		changes = append(changes, events.PutAgent(agent(fmt.Sprintf("a%d-S%d", i, i), fmt.Sprintf("agent-%d", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250+1))))
	}
	for a := range tasks / 5 {
		appID := fmt.Sprintf("/group%d/app%d", a%100, a)
		changes = append(changes, events.PutApp(app(appID, "tcp")))
		for i := range 5 {
			ag := (a*5 + i) % 100
			changes = append(changes, events.PutTask(runningTask(fmt.Sprintf("group%d_app%d.%d", a%100, a, i), appID,
				fmt.Sprintf("a%d-S%d", ag, ag), fmt.Sprintf("10.0.%d.%d", ag/250, ag%250+1), 31000+i)))
		}
	}
	commit(tb, s, changes...)
	return s
}

// BenchmarkServeA is the hot path: an A question answered from a packed
// answer, no sockets. It must not allocate.
func BenchmarkServeA(b *testing.B) {
	benchmarkServe(b, "app01.group.marathon.mesos.", dns.TypeA, 0)
}

func BenchmarkServeSRVEDNS(b *testing.B) {
	benchmarkServe(b, "_app01.group._tcp.marathon.mesos.", dns.TypeSRV, 1232)
}

func BenchmarkServeNXDOMAIN(b *testing.B) {
	benchmarkServe(b, "nope.marathon.mesos.", dns.TypeA, 0)
}

func benchmarkServe(b *testing.B, name string, qtype uint16, edns uint16) {
	srv, _ := testServer(b, fixture(b))
	w := newPacketWorker(srv)
	pkt := packQuery(b, name, qtype, edns)
	out := make([]byte, 0, maxUDPSize)
	if reply, _ := w.serve(pkt, out, loopback, false); reply == nil {
		b.Fatal("no reply")
	}
	b.ReportAllocs()
	for b.Loop() {
		w.serve(pkt, out, loopback, false)
	}
}

// BenchmarkZoneApply is one task event in a zone of 50,000 tasks: the
// task's health flips, so its app's names are rebuilt each time.
func BenchmarkZoneApply(b *testing.B) {
	s := bigState(b, 50000)
	z := BuildZone(s, testConfig)
	t := s.Tasks["group7_app7.3"]
	b.ReportAllocs()
	up := true
	for b.Loop() {
		up = !up
		if up {
			t.State = events.TaskRunning
		} else {
			t.State = events.TaskStaging
		}
		z = z.Apply(s, commit(b, s, events.PutTask(t))[0])
	}
}

// BenchmarkZoneApplyAgent is an agent event at 50,000 tasks: the agent's
// 500 tasks (100 apps) are recomputed.
func BenchmarkZoneApplyAgent(b *testing.B) {
	s := bigState(b, 50000)
	z := BuildZone(s, testConfig)
	a := s.Agents["a7-S7"]
	b.ReportAllocs()
	for b.Loop() {
		if a.Hostname == "agent-7" {
			a.Hostname = "renamed"
		} else {
			a.Hostname = "agent-7"
		}
		z = z.Apply(s, commit(b, s, events.PutAgent(a))[0])
	}
}

// BenchmarkBuildZone50k builds the zone of 50,000 tasks from a snapshot and
// reports the heap it holds.
func BenchmarkBuildZone50k(b *testing.B) {
	s := bigState(b, 50000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	z := BuildZone(s, testConfig)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(z)
	heap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / 1e6

	b.ReportAllocs()
	for b.Loop() {
		BuildZone(s, testConfig)
	}
	b.ReportMetric(heap, "heap-MB")
}

// BenchmarkPacked50k is the zone of 50,000 tasks after a query for the A
// and the SRV records of every name that has them, as the fast path packs
// them. heap-MB is the heap then (HeapAlloc after a GC: the state, the
// zone and its packed answers), zone-MB what the zone's records take (and
// the list of names), packed-MB what the packed answers add. The loop
// packs them all again. The tasks' canonical names are not among them:
// they are answered from the zone's canonTask, written as they are asked
// (canon.go), with nothing packed to keep.
func BenchmarkPacked50k(b *testing.B) {
	s := bigState(b, 50000)
	var before, built, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	z := BuildZone(s, testConfig)
	type named struct {
		name string
		data *nodeData
	}
	var nodes []named
	z.names.each(func(name string, n node) {
		if n.data.has(dns.TypeA) || n.data.has(dns.TypeSRV) {
			nodes = append(nodes, named{name, n.data})
		}
	})
	runtime.GC()
	runtime.ReadMemStats(&built)
	packAll := func() {
		for _, n := range nodes {
			for _, qtype := range []uint16{dns.TypeA, dns.TypeSRV} {
				if n.data.has(qtype) && n.data.packed([]byte(n.name), qtype, z.cfg.ttl) == nil {
					b.Fatalf("%s %s does not pack", n.name, dns.TypeToString[qtype])
				}
			}
		}
	}
	packAll()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	runtime.KeepAlive(z)
	mb := func(a, b uint64) float64 { return float64(int64(a)-int64(b)) / 1e6 }

	b.ReportAllocs()
	for b.Loop() {
		for _, n := range nodes {
			n.data.cache.Store(nil)
		}
		packAll()
	}
	b.ReportMetric(mb(after.HeapAlloc, 0), "heap-MB")
	b.ReportMetric(mb(built.HeapAlloc, before.HeapAlloc), "zone-MB")
	b.ReportMetric(mb(after.HeapAlloc, built.HeapAlloc), "packed-MB")
}

package dnsserver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// srvRec is an SRV record to target, whose address is addr ("" for none).
func srvRec(port uint16, target, addr string) rec {
	var addrs []netip.Addr
	if addr != "" {
		addrs = append(addrs, netip.MustParseAddr(addr))
	}
	return targetRec(dns.TypeSRV, port, target, addrs)
}

// Every rotation of a packed answer is a message that dns.Msg unpacks, with
// the answers in that rotation and ADDITIONAL unchanged: its owners, which
// point at the targets in ANSWER, follow them.
func TestPackedRotations(t *testing.T) {
	var many []rec
	for i := range 600 {
		many = append(many, srvRec(uint16(31000+i), fmt.Sprintf("host-%03d.slave.mesos.", i), fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)))
	}
	tests := []struct {
		desc  string
		name  string // asked in mixed case
		qtype uint16
		recs  []rec
	}{
		{"A", "App.Group.Marathon.Mesos.", dns.TypeA, []rec{
			addrRec(netip.MustParseAddr("10.0.0.1")), addrRec(netip.MustParseAddr("10.0.0.2")),
			addrRec(netip.MustParseAddr("10.0.0.3")), addrRec(netip.MustParseAddr("10.0.0.4")),
		}},
		{"AAAA", "App.Marathon.Mesos.", dns.TypeAAAA, []rec{
			addrRec(netip.MustParseAddr("fd00::1")), addrRec(netip.MustParseAddr("fd00::2")),
		}},
		{"SRV with additional", "_App.Group._tcp.Marathon.Mesos.", dns.TypeSRV, []rec{
			srvRec(31000, "agent-1.slave.mesos.", "10.0.0.1"),
			srvRec(31001, "agent-1.slave.mesos.", "10.0.0.1"),
			srvRec(31002, "agent-2.slave.mesos.", "10.0.0.2"),
			srvRec(31003, "app-1a2b3-s3.marathon.mesos.", "192.168.5.5"),
			srvRec(31004, "app-4c5d6-s4.marathon.mesos.", "fd00::5"),
			srvRec(31005, "nowhere.slave.mesos.", ""),
		}},
		// Targets that share suffixes: dns.Msg.Pack would point the later
		// ones into the first.
		{"PTR", "5.5.168.192.In-Addr.Arpa.", dns.TypePTR, []rec{
			{typ: dns.TypePTR, target: "own.marathon.mesos."},
			{typ: dns.TypePTR, target: "web.marathon.mesos."},
			{typ: dns.TypePTR, target: "app.group.marathon.mesos."},
		}},
		// Targets compressed against the question, and ADDITIONAL owners
		// that point at them.
		{"NS", "Mesos.", dns.TypeNS, []rec{
			targetRec(dns.TypeNS, 0, "ns1.mesos.", []netip.Addr{netip.MustParseAddr("127.0.0.1")}),
			targetRec(dns.TypeNS, 0, "ns2.mesos.", []netip.Addr{netip.MustParseAddr("127.0.0.2")}),
			targetRec(dns.TypeNS, 0, "ns.example.org.", []netip.Addr{netip.MustParseAddr("fd00::53")}),
		}},
		{"one SRV", "_Leader._tcp.Mesos.", dns.TypeSRV, []rec{srvRec(8080, "leader.mesos.", "10.0.0.100")}},
		// ANSWER ends past where a compression pointer reaches.
		{"600 SRV", "_Big._tcp.Marathon.Mesos.", dns.TypeSRV, many},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			lower := strings.ToLower(tc.name)
			recs := normalizeRecs(slices.Clone(tc.recs))
			p := packAnswer(lower, tc.qtype, recs, 5)
			if p == nil {
				t.Fatal("does not pack")
			}
			var answer, extra []dns.RR
			targets := map[string]bool{}
			for _, r := range recs {
				answer = append(answer, r.rr(tc.name, 5, nil))
				extra = appendExtra(extra, r, lower, 5)
				targets[r.target] = true
			}
			if p.rotate != (len(answer) > 1) || int(p.an) != len(answer) || int(p.ar) != len(extra) {
				t.Fatalf("rotate %v, %d answers, %d additional; want %v, %d, %d", p.rotate, p.an, p.ar, len(answer) > 1, len(answer), len(extra))
			}
			if fixes := p.fixes(); p.ansEnd() > maxPointer && fixes > 0 {
				t.Errorf("ANSWER ends at %d, past where pointers reach, and %d pointers in ADDITIONAL lead into it", p.ansEnd(), fixes)
			}
			if tc.qtype != dns.TypePTR && tc.qtype != dns.TypeNS && p.ansEnd() <= maxPointer {
				// Byte for byte what dns.Msg.Pack makes of the same reply.
				m := &dns.Msg{Compress: true, Answer: answer, Extra: extra}
				m.SetQuestion(tc.name, tc.qtype)
				m.Id, m.Response, m.Authoritative, m.RecursionDesired = 0x1234, true, true, false
				want, err := m.Pack()
				if err != nil {
					t.Fatal(err)
				}
				pkt := packQuery(t, tc.name, tc.qtype, 0)
				var q query
				parseQuery(pkt, &q, make([]byte, 256))
				if got := composeAnswer(nil, pkt, &q, &p.packedAnswer, 0, flagQR|flagAA, maxTCPSize); !slices.Equal(got, want) {
					t.Errorf("rotation 0:\n% x\ndns.Msg.Pack:\n% x", got, want)
				}
			}
			ks := []int{0, 1, len(answer) / 2, len(answer) - 1}
			if len(answer) <= 20 {
				ks = nil
				for k := range answer {
					ks = append(ks, k)
				}
			}
			for _, k := range slices.Compact(ks) {
				pkt := packQuery(t, tc.name, tc.qtype, 4096)
				var q query
				if parseQuery(pkt, &q, make([]byte, 256)) != parseFast {
					t.Fatal("query not on the fast path")
				}
				reply := composeAnswer(make([]byte, 0, maxUDPSize), pkt, &q, &p.packedAnswer, k, flagQR|flagAA, maxTCPSize)
				m := new(dns.Msg)
				if err := m.Unpack(reply); err != nil {
					t.Fatalf("rotation %d does not unpack: %v", k, err)
				}
				if m.Id != 0x1234 || m.Question[0].Name != tc.name || m.IsEdns0() == nil {
					t.Errorf("rotation %d: id %#x, question %q, OPT %v", k, m.Id, m.Question[0].Name, m.IsEdns0())
				}
				if len(m.Answer) != len(answer) {
					t.Fatalf("rotation %d: %d answers, want %d", k, len(m.Answer), len(answer))
				}
				for i, rr := range m.Answer {
					// Names compressed against the question take its case.
					if want := answer[(i+k)%len(answer)]; !strings.EqualFold(rr.String(), want.String()) || rr.Header().Name != tc.name {
						t.Errorf("rotation %d: answer %d is %v, want %v", k, i, rr, want)
					}
				}
				got := m.Extra[:len(m.Extra)-1] // OPT last
				if !slices.EqualFunc(got, extra, func(a, b dns.RR) bool { return strings.EqualFold(a.String(), b.String()) }) {
					t.Errorf("rotation %d: ADDITIONAL\n%v\nwant\n%v", k, got, extra)
				}
				for _, rr := range got {
					if !targets[strings.ToLower(rr.Header().Name)] {
						t.Errorf("rotation %d: ADDITIONAL owner %q is no target", k, rr.Header().Name)
					}
				}
			}
		})
	}
}

// The check behind rotation tells answers that point into each other, as
// dns.Msg.Pack makes them, from ours.
func TestAnswersMovable(t *testing.T) {
	ptrs := []rec{
		{typ: dns.TypePTR, target: "own.marathon.mesos."},
		{typ: dns.TypePTR, target: "web.marathon.mesos."},
	}
	srvs := []rec{srvRec(1, "agent-1.slave.mesos.", "10.0.0.1"), srvRec(2, "agent-2.slave.mesos.", "10.0.0.2")}
	for _, tc := range []struct {
		desc  string
		qtype uint16
		recs  []rec
		want  bool
	}{
		{"PTR", dns.TypePTR, ptrs, false},
		{"SRV", dns.TypeSRV, srvs, true},
	} {
		const name = "5.5.168.192.in-addr.arpa."
		m := &dns.Msg{Compress: true}
		m.Question = []dns.Question{{Name: name, Qtype: tc.qtype, Qclass: dns.ClassINET}}
		for _, r := range tc.recs {
			m.Answer = append(m.Answer, r.rr(name, 5, nil))
		}
		msg, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		qEnd := skipName(msg, headerLen) + 4
		var ends []uint16
		for off := qEnd; off < len(msg); {
			off = skipRR(msg, off)
			ends = append(ends, uint16(off))
		}
		if movable, ok := answersMovable(msg, qEnd, ends); movable != tc.want || !ok {
			t.Errorf("%s packed by dns.Msg: movable %v ok %v, want %v", tc.desc, movable, ok, tc.want)
		}
		p := packAnswer(name, tc.qtype, tc.recs, 5)
		msg = append(make([]byte, p.qEnd), p.b[p.recs:]...)
		ends = nil
		for i := range int(p.an) {
			ends = append(ends, uint16(p.off(i)))
		}
		if movable, ok := answersMovable(msg, int(p.qEnd), ends); !movable || !ok || !p.rotate {
			t.Errorf("%s packed here: movable %v ok %v rotate %v", tc.desc, movable, ok, p.rotate)
		}
	}
}

// Through the server: every rotation of SRV records and their targets'
// addresses is the zone's answer: 100 whole over TCP, 85 over EDNS 4096
// with what fits of ADDITIONAL; and 9 or 10 records in 512 bytes, with
// some of ADDITIONAL or none. (Each SRV record is 47 bytes: its target,
// the task's canonical name, is never compressed.)
func TestServeRotatesWithAdditional(t *testing.T) {
	for _, tc := range []struct {
		tasks int
		edns  uint16
		tcp   bool
		extra int // ADDITIONAL records that fit
	}{
		{100, 0, true, 100},
		{85, 4096, false, 3}, // 42 + 85*47 + 3*16 + 11 (OPT) = 4096 bytes
		{9, 0, false, 2},     // 42 + 9*47 + 2*16 = 497 bytes
		{10, 0, false, 0},    // 512 bytes without ADDITIONAL
	} {
		t.Run(fmt.Sprintf("%d/edns%d/tcp=%v", tc.tasks, tc.edns, tc.tcp), func(t *testing.T) {
			s := fixture(t)
			bigApp(t, s, tc.tasks)
			srv, _ := testServer(t, s)
			const name = "_big._tcp.marathon.mesos."
			want := srv.Zone().Lookup(name, dns.TypeSRV)
			w := newPacketWorker(srv)
			firsts := map[string]bool{}
			for range tc.tasks {
				m, n := exchange(t, srv, w, packQuery(t, name, dns.TypeSRV, tc.edns), loopback, tc.tcp)
				if m.Truncated || !slices.Equal(rrStrings(m.Answer), rrStrings(want.Answer)) {
					t.Fatalf("TC %v, answers differ from the zone's:\n%v", m.Truncated, m.Answer)
				}
				firsts[m.Answer[0].String()] = true
				extra := m.Extra
				if tc.edns > 0 {
					extra = extra[:len(extra)-1]
				}
				if len(extra) != tc.extra || !slices.Equal(rrStrings(extra), rrStrings(want.Extra[:len(extra)])) {
					t.Fatalf("ADDITIONAL is not the first %d of the zone's:\n%v", tc.extra, extra)
				}
				if !tc.tcp && n > max(512, int(tc.edns)) {
					t.Fatalf("%d bytes", n)
				}
			}
			if len(firsts) != tc.tasks {
				t.Errorf("%d different first answers in %d queries", len(firsts), tc.tasks)
			}
		})
	}
}

// Names with the same addresses share one packed answer, which must serve
// questions of any length: <task>.<fw> and <task>.<fw>.slave of tasks that
// use their agents' addresses, each asked first in turn, in both cases and
// with and without EDNS, answer their own name on the fast path.
func TestServeSharedAddressAnswers(t *testing.T) {
	for _, names := range [][]string{
		{"app01.group.marathon.mesos.", "APP01.group.marathon.SLAVE.mesos."},
		{"app01.group.marathon.slave.mesos.", "App01.Group.marathon.mesos."},
	} {
		srv, _ := testServer(t, fixture(t))
		w := newPacketWorker(srv)
		for _, edns := range []uint16{0, 1232} {
			for _, name := range names {
				pkt := packQuery(t, name, dns.TypeA, edns)
				m, _ := exchange(t, srv, w, pkt, loopback, false)
				want := rrStrings(srv.Zone().Lookup(strings.ToLower(name), dns.TypeA).Answer)
				for _, rr := range m.Answer {
					rr.Header().Name = strings.ToLower(rr.Header().Name)
				}
				if got := rrStrings(m.Answer); len(want) != 2 || !slices.Equal(got, want) || m.Question[0].Name != name {
					t.Errorf("%s (EDNS %d): got %q for %q, want %q", name, edns, got, m.Question[0].Name, want)
				}
				out := make([]byte, 0, maxUDPSize)
				if n := testing.AllocsPerRun(10, func() { w.serve(pkt, out, loopback, false) }); n != 0 {
					t.Errorf("%s: %v allocations per query: not the fast path", name, n)
				}
			}
		}
	}
}

// _<task>._tcp.<fw>.slave and _udp share their packed SRV answer: each
// answers its own name, ADDITIONAL included, on the fast path.
func TestServeSharedSRVAnswers(t *testing.T) {
	srv, _ := testServer(t, fixture(t))
	w := newPacketWorker(srv)
	for _, name := range []string{"_app01.group._udp.marathon.slave.mesos.", "_app01.group._tcp.marathon.slave.mesos.", "_app01-group._udp.marathon.slave.mesos."} {
		pkt := packQuery(t, name, dns.TypeSRV, 1232)
		m, _ := exchange(t, srv, w, pkt, loopback, false)
		res := srv.Zone().Lookup(name, dns.TypeSRV)
		got, want := rrStrings(append(m.Answer, m.Extra...)), rrStrings(append(res.Answer, res.Extra...))
		got = slices.DeleteFunc(got, func(s string) bool { return strings.Contains(s, "OPT") })
		if len(res.Answer) == 0 || !slices.Equal(got, want) || m.Question[0].Name != name {
			t.Errorf("%s: got %q for %q, want %q", name, got, m.Question[0].Name, want)
		}
		out := make([]byte, 0, maxUDPSize)
		if n := testing.AllocsPerRun(10, func() { w.serve(pkt, out, loopback, false) }); n != 0 {
			t.Errorf("%s: %v allocations per query: not the fast path", name, n)
		}
	}
}

func TestPacksAlike(t *testing.T) {
	srv := func(target string) []rec { return []rec{srvRec(80, target, "10.0.0.1")} }
	a := []rec{addrRec(netip.MustParseAddr("10.0.0.1"))}
	for _, tc := range []struct {
		a, b string
		recs []rec
		want bool
	}{
		{"web.marathon.mesos.", "web.marathon.slave.mesos.", a, true},
		{"_web._tcp.marathon.slave.mesos.", "_web._udp.marathon.slave.mesos.", srv("web-x-s1.marathon.slave.mesos."), true},
		// The target ends in _tcp.<fw>.slave.<domain>: it would point
		// further into the first name than the second has in common.
		{"_web._tcp.marathon.slave.mesos.", "_web._udp.marathon.slave.mesos.", srv("x._tcp.marathon.slave.mesos."), false},
		{"_web._tcp.marathon.mesos.", "_web._tcp.marathon.slave.mesos.", srv("web-x-s1.marathon.mesos."), false},
	} {
		if got := packsAlike(tc.a, tc.b, tc.recs); got != tc.want {
			t.Errorf("packsAlike(%s, %s, %v) = %v, want %v", tc.a, tc.b, tc.recs, got, tc.want)
		}
	}
}

// Every name of a cluster, asked its A and SRV records over the fast path
// (which serves answers packed once and shared between names), answers
// what the zone's Lookup says: the answers and their targets' addresses.
func TestServeEveryNameAsLookup(t *testing.T) {
	s := bigState(t, 500)
	srv, _ := testServer(t, s)
	w := newPacketWorker(srv)
	z := srv.Zone()
	var names []string
	z.names.each(func(name string, _ node) { names = append(names, name) })
	slices.Sort(names)
	out := make([]byte, 0, maxUDPSize)
	for _, name := range names {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeSRV} {
			res := z.Lookup(name, qtype)
			if len(res.Answer) == 0 {
				continue
			}
			reply, _ := w.serve(packQuery(t, name, qtype, 4096), out, loopback, false)
			m := new(dns.Msg)
			if err := m.Unpack(reply); err != nil {
				t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
			}
			m.Extra = slices.DeleteFunc(m.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
			got, want := rrStrings(append(m.Answer, m.Extra...)), rrStrings(append(res.Answer, res.Extra...))
			if !slices.Equal(got, want) {
				t.Errorf("%s %s: got %q, want %q", name, dns.TypeToString[qtype], got, want)
			}
		}
	}
}

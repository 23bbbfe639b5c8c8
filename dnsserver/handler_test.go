package dnsserver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/atollhq/atoll/events"
	"github.com/miekg/dns"
)

// stubForwarder answers every name with 192.0.2.1, as an upstream would.
type stubForwarder struct{ calls atomic.Int32 }

func (f *stubForwarder) Forward(_ context.Context, req *dns.Msg) (*dns.Msg, error) {
	f.calls.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	m.Answer = []dns.RR{&dns.A{
		Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A:   net.IPv4(192, 0, 2, 1),
	}}
	return m, nil
}

var (
	loopback = netip.MustParseAddr("127.0.0.1")
	outsider = netip.MustParseAddr("203.0.113.7")
)

// testServer is a server without sockets, with the zone of s (none when s
// is nil) and a stub forwarder.
func testServer(t testing.TB, s *events.State) (*Server, *stubForwarder) {
	t.Helper()
	srv, err := NewServer(testConfig, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fwd := &stubForwarder{}
	srv.fwd = fwd
	if s != nil {
		srv.Handler().Reset(s)
	}
	return srv, fwd
}

// exchange runs one packet through the handler the way a socket does,
// forwarding included, and unpacks the reply (nil for none).
func exchange(t testing.TB, srv *Server, w *packetWorker, pkt []byte, client netip.Addr, tcp bool) (*dns.Msg, int) {
	t.Helper()
	reply, fwd := w.serve(pkt, make([]byte, 0, maxUDPSize), client, tcp)
	if fwd != nil {
		reply = srv.forward(context.Background(), fwd, make([]byte, 0, maxUDPSize), tcp, &w.counts)
	}
	if reply == nil {
		return nil, 0
	}
	m := new(dns.Msg)
	if err := m.Unpack(reply); err != nil {
		t.Fatalf("reply does not unpack: %v", err)
	}
	return m, len(reply)
}

func TestServeAnswers(t *testing.T) {
	srv, _ := testServer(t, fixture(t))
	w := newPacketWorker(srv)
	soa := func(m *dns.Msg) bool {
		return len(m.Ns) == 1 && m.Ns[0].Header().Rrtype == dns.TypeSOA && m.Ns[0].Header().Name == "mesos."
	}
	tests := []struct {
		name   string
		qtype  uint16
		rcode  int
		answer int
		extra  int
		auth   bool // SOA in AUTHORITY
	}{
		{"app01.group.marathon.mesos.", dns.TypeA, dns.RcodeSuccess, 2, 0, false},
		{"_app01.group._tcp.marathon.mesos.", dns.TypeSRV, dns.RcodeSuccess, 4, 2, false},
		{"_leader._udp.mesos.", dns.TypeSRV, dns.RcodeSuccess, 1, 1, false},
		{"mesos.", dns.TypeSOA, dns.RcodeSuccess, 1, 0, false},
		{"mesos.", dns.TypeNS, dns.RcodeSuccess, 1, 1, false},
		{"1.0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, 1, 0, false},
		{"mesos.", dns.TypeANY, dns.RcodeSuccess, 2, 0, false},
		{"nope.marathon.mesos.", dns.TypeA, dns.RcodeNameError, 0, 0, true},
		{"_nope._tcp.marathon.mesos.", dns.TypeSRV, dns.RcodeNameError, 0, 0, true},
		{"app01.group.marathon.mesos.", dns.TypeAAAA, dns.RcodeSuccess, 0, 0, true},
		{"app01.group.marathon.mesos.", dns.TypeTXT, dns.RcodeSuccess, 0, 0, true},
		{"group.marathon.mesos.", dns.TypeA, dns.RcodeSuccess, 0, 0, true},
		{"leader.mesos.", dns.TypeSOA, dns.RcodeSuccess, 0, 0, true},
		{"leader.mesos.", dns.TypeNS, dns.RcodeSuccess, 0, 0, true},
		{"1.0.0.10.in-addr.arpa.", dns.TypeA, dns.RcodeSuccess, 0, 0, false},
		{"mesos.", dns.TypeAXFR, dns.RcodeRefused, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s", tc.name, dns.TypeToString[tc.qtype]), func(t *testing.T) {
			m, _ := exchange(t, srv, w, packQuery(t, tc.name, tc.qtype, 0), loopback, false)
			if m == nil {
				t.Fatal("no reply")
			}
			if m.Rcode != tc.rcode || len(m.Answer) != tc.answer || len(m.Extra) != tc.extra || soa(m) != tc.auth {
				t.Errorf("got %s with %d answers, %d extra, SOA in authority %v; want %s, %d, %d, %v\n%v",
					dns.RcodeToString[m.Rcode], len(m.Answer), len(m.Extra), soa(m),
					dns.RcodeToString[tc.rcode], tc.answer, tc.extra, tc.auth, m)
			}
			if m.Id != 0x1234 || !m.Response {
				t.Errorf("id %#x response %v", m.Id, m.Response)
			}
			if m.Authoritative != (tc.rcode != dns.RcodeRefused) {
				t.Errorf("AA = %v", m.Authoritative)
			}
			if !m.RecursionAvailable {
				t.Errorf("RA not set for a client we recurse for")
			}
		})
	}
}

func TestServeKeepsCaseAndFlags(t *testing.T) {
	srv, _ := testServer(t, fixture(t))
	w := newPacketWorker(srv)
	for _, name := range []string{"ApP01.GrOuP.MaRaThOn.MeSoS.", "NoPe.MESOS."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		q.Id, q.RecursionDesired, q.CheckingDisabled = 0xbeef, false, true
		pkt, _ := q.Pack()
		m, _ := exchange(t, srv, w, pkt, loopback, false)
		if m.Id != 0xbeef || m.RecursionDesired || !m.CheckingDisabled {
			t.Errorf("%s: id %#x RD %v CD %v", name, m.Id, m.RecursionDesired, m.CheckingDisabled)
		}
		if m.Question[0].Name != name {
			t.Errorf("question %q, want %q", m.Question[0].Name, name)
		}
		for _, rr := range append(m.Answer, m.Ns...) {
			if want := name; rr.Header().Rrtype != dns.TypeSOA && rr.Header().Name != want {
				t.Errorf("owner %q, want %q", rr.Header().Name, want)
			}
			if soa, ok := rr.(*dns.SOA); ok && !strings.EqualFold(soa.Hdr.Name, "mesos.") {
				t.Errorf("SOA owner %q", soa.Hdr.Name)
			}
		}
	}
}

func TestServeEDNS(t *testing.T) {
	srv, _ := testServer(t, fixture(t))
	w := newPacketWorker(srv)
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV} {
		m, _ := exchange(t, srv, w, packQuery(t, "app01.group.marathon.mesos.", qtype, 1232), loopback, false)
		opt := m.IsEdns0()
		if opt == nil || opt.Version() != 0 || opt.Do() {
			t.Errorf("%s: OPT %v", dns.TypeToString[qtype], opt)
		}
		if m.Extra[len(m.Extra)-1].Header().Rrtype != dns.TypeOPT {
			t.Errorf("%s: OPT is not last", dns.TypeToString[qtype])
		}
	}
	if m, _ := exchange(t, srv, w, packQuery(t, "app01.group.marathon.mesos.", dns.TypeA, 0), loopback, false); m.IsEdns0() != nil {
		t.Error("OPT in a reply to a query without one")
	}
	// EDNS version 1: BADVERS.
	q := new(dns.Msg)
	q.SetQuestion("app01.group.marathon.mesos.", dns.TypeA)
	q.SetEdns0(1232, false)
	q.IsEdns0().SetVersion(1)
	pkt, _ := q.Pack()
	if m, _ := exchange(t, srv, w, pkt, loopback, false); m.Rcode != dns.RcodeBadVers {
		t.Errorf("EDNS version 1: %s, want BADVERS", dns.RcodeToString[m.Rcode])
	}
}

// bigApp adds an app with n running tasks of one port each, spread over
// three agents as `atoll dev` would.
func bigApp(t testing.TB, s *events.State, n int) {
	changes := []events.Change{events.PutApp(app("/big", "tcp"))}
	for i := range n {
		agentID := []string{"a1-S1", "a2-S2", "a1-S1"}[i%3]
		ip := map[string]string{"a1-S1": "10.0.0.1", "a2-S2": "10.0.0.2"}[agentID]
		changes = append(changes, events.PutTask(runningTask(fmt.Sprintf("big.%03d", i), "/big", agentID, ip, 31000+i)))
	}
	commit(t, s, changes...)
}

func TestServeTruncation(t *testing.T) {
	s := fixture(t)
	// 85 SRV records with Mesos-DNS's targets, <task>-<hash>-s<N>.<fw>.<domain>
	// (47 bytes each: targets are never compressed, RFC 2782), fit in 4096.
	bigApp(t, s, 85)
	srv, _ := testServer(t, s)
	w := newPacketWorker(srv)
	const name = "_big._tcp.marathon.mesos."
	tests := []struct {
		desc    string
		edns    uint16
		tcp     bool
		tc      bool
		answers int
		maxLen  int
	}{
		{"no EDNS: 512 bytes", 0, false, true, 0, 512},
		{"EDNS 1232", 1232, false, true, 0, 1232},
		{"EDNS 4096: whole", 4096, false, false, 85, 4096},
		{"EDNS 65000: capped at 4096", 65000, false, false, 85, 4096},
		{"TCP: whole", 0, true, false, 85, 65535},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			m, n := exchange(t, srv, w, packQuery(t, name, dns.TypeSRV, tc.edns), loopback, tc.tcp)
			if m.Truncated != tc.tc || len(m.Answer) != tc.answers || n > tc.maxLen {
				t.Errorf("TC %v, %d answers, %d bytes; want TC %v, %d answers, at most %d bytes",
					m.Truncated, len(m.Answer), n, tc.tc, tc.answers, tc.maxLen)
			}
			if tc.edns > 0 && m.IsEdns0() == nil {
				t.Error("no OPT")
			}
		})
	}
}

func TestServeDropsAdditionalBeforeTruncating(t *testing.T) {
	s := fixture(t)
	bigApp(t, s, 10)
	srv, _ := testServer(t, s)
	m, n := exchange(t, srv, newPacketWorker(srv), packQuery(t, "_big._tcp.marathon.mesos.", dns.TypeSRV, 0), loopback, false)
	// 10 SRV records fit in 512 bytes, their targets' addresses not all.
	if m.Truncated || len(m.Answer) != 10 || n > 512 {
		t.Errorf("TC %v, %d answers, %d extra, %d bytes", m.Truncated, len(m.Answer), len(m.Extra), n)
	}
}

func TestServeRotates(t *testing.T) {
	s := fixture(t)
	bigApp(t, s, 5)
	srv, _ := testServer(t, s)
	w := newPacketWorker(srv)
	for _, tcp := range []bool{false, true} {
		firsts := map[string]bool{}
		var sets [][]string
		for range 5 {
			m, _ := exchange(t, srv, w, packQuery(t, "_big._tcp.marathon.mesos.", dns.TypeSRV, 0), loopback, tcp)
			firsts[m.Answer[0].String()] = true
			sets = append(sets, rrStrings(m.Answer))
		}
		if len(firsts) != 5 {
			t.Errorf("tcp=%v: %d different first answers in 5 queries, want 5", tcp, len(firsts))
		}
		for _, set := range sets[1:] {
			if !slices.Equal(set, sets[0]) {
				t.Errorf("tcp=%v: rotation changed the set", tcp)
			}
		}
	}
}

func TestServeBeforeFirstSnapshot(t *testing.T) {
	srv, fwd := testServer(t, nil)
	w := newPacketWorker(srv)
	for _, qtype := range []uint16{dns.TypeA, dns.TypeSRV, dns.TypeSOA} {
		m, _ := exchange(t, srv, w, packQuery(t, "web.marathon.mesos.", qtype, 0), loopback, false)
		if m.Rcode != dns.RcodeServerFailure || m.Authoritative {
			t.Errorf("%s before sync: %s AA=%v, want SERVFAIL", dns.TypeToString[qtype], dns.RcodeToString[m.Rcode], m.Authoritative)
		}
	}
	m, _ := exchange(t, srv, w, packQuery(t, "example.com.", dns.TypeA, 0), loopback, false)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || fwd.calls.Load() != 1 {
		t.Errorf("forwarding before sync: %v", m)
	}
}

func TestServeRecursionACL(t *testing.T) {
	srv, fwd := testServer(t, fixture(t))
	w := newPacketWorker(srv)
	m, _ := exchange(t, srv, w, packQuery(t, "example.com.", dns.TypeA, 0), outsider, false)
	if m.Rcode != dns.RcodeRefused || m.RecursionAvailable || fwd.calls.Load() != 0 {
		t.Errorf("outsider asking an outside name: %s RA=%v, %d forwards; want REFUSED", dns.RcodeToString[m.Rcode], m.RecursionAvailable, fwd.calls.Load())
	}
	// Reverse names the zone does not hold are outside names too.
	if m, _ := exchange(t, srv, w, packQuery(t, "9.9.9.9.in-addr.arpa.", dns.TypePTR, 0), outsider, false); m.Rcode != dns.RcodeRefused {
		t.Errorf("outsider asking an outside reverse name: %s", dns.RcodeToString[m.Rcode])
	}
	// The cluster's own names are answered for everyone.
	if m, _ := exchange(t, srv, w, packQuery(t, "leader.mesos.", dns.TypeA, 0), outsider, false); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Errorf("outsider asking leader.mesos.: %v", m)
	}
	if m, _ := exchange(t, srv, w, packQuery(t, "example.com.", dns.TypeA, 0), loopback, false); m.Rcode != dns.RcodeSuccess || fwd.calls.Load() != 1 {
		t.Errorf("insider asking an outside name: %v", m)
	}
	// No forwarder: REFUSED for everyone.
	srv.fwd = nil
	if m, _ := exchange(t, srv, w, packQuery(t, "example.com.", dns.TypeA, 0), loopback, false); m.Rcode != dns.RcodeRefused {
		t.Errorf("without a forwarder: %s, want REFUSED", dns.RcodeToString[m.Rcode])
	}
}

func TestServeMalformed(t *testing.T) {
	srv, _ := testServer(t, fixture(t))
	w := newPacketWorker(srv)
	good := packQuery(t, "leader.mesos.", dns.TypeA, 0)
	response := append([]byte(nil), good...)
	response[2] |= 0x80
	tests := []struct {
		desc  string
		pkt   []byte
		rcode int // -1: no reply
	}{
		{"empty", nil, -1},
		{"shorter than a header", good[:11], -1},
		{"a response", response, -1},
		{"header only", good[:12], dns.RcodeFormatError},
		{"cut question", good[:len(good)-2], dns.RcodeFormatError},
		{"compression loop", append(append([]byte(nil), good[:12]...), 0xC0, 12, 0, 1, 0, 1), dns.RcodeFormatError},
		{"label past the end", append(append([]byte(nil), good[:12]...), 40, 'a'), dns.RcodeFormatError},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			m, _ := exchange(t, srv, w, tc.pkt, loopback, false)
			switch {
			case tc.rcode < 0 && m != nil:
				t.Errorf("replied %v", m)
			case tc.rcode >= 0 && m == nil:
				t.Errorf("no reply, want %s", dns.RcodeToString[tc.rcode])
			case m != nil && m.Rcode != tc.rcode:
				t.Errorf("%s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
		})
	}
}

func TestServeCountsQueries(t *testing.T) {
	srv, _ := testServer(t, fixture(t))
	w := newPacketWorker(srv)
	exchange(t, srv, w, packQuery(t, "leader.mesos.", dns.TypeA, 0), loopback, false)
	exchange(t, srv, w, packQuery(t, "nope.mesos.", dns.TypeSRV, 0), loopback, false)
	w.counts.flush(srv.counts)
	for _, c := range []struct{ typ, rcode string }{{"A", "NOERROR"}, {"SRV", "NXDOMAIN"}} {
		if got := counterValue(t, srv.metrics.Queries.WithLabelValues(c.typ, c.rcode)); got != 1 {
			t.Errorf("queries{%s,%s} = %v, want 1", c.typ, c.rcode, got)
		}
	}
}

func TestHandlerSwapsZones(t *testing.T) {
	srv, _ := testServer(t, nil)
	if srv.Zone() != nil {
		t.Fatal("a zone before the first snapshot")
	}
	s := fixture(t)
	h := srv.Handler()
	h.Reset(s)
	first := srv.Zone()
	if first == nil || first.SOA().Serial != uint32(s.Seq) {
		t.Fatalf("after Reset: %v", first)
	}
	e := commit(t, s, events.DeleteApp("/web"))[0]
	h.Applied(s, e)
	if z := srv.Zone(); z == first || z.SOA().Serial != uint32(e.Seq) || z.Lookup("web.marathon.mesos.", dns.TypeA).Exists {
		t.Errorf("after Applied: serial %d, web exists %v", z.SOA().Serial, z.Lookup("web.marathon.mesos.", dns.TypeA).Exists)
	}
	if !first.Lookup("web.marathon.mesos.", dns.TypeA).Exists {
		t.Error("the old zone changed")
	}
	if got := counterValue(t, srv.metrics.EventsApplied); got != 1 {
		t.Errorf("events applied %v, want 1", got)
	}
}

// The hot path allocates nothing once an answer is packed.
func TestServeDoesNotAllocate(t *testing.T) {
	srv, _ := testServer(t, fixture(t))
	w := newPacketWorker(srv)
	out := make([]byte, 0, maxUDPSize)
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  uint16
	}{
		{"App01.Group.marathon.mesos.", dns.TypeA, 0},
		{"_app01.group._tcp.marathon.mesos.", dns.TypeSRV, 1232},
		{"1.0.0.10.in-addr.arpa.", dns.TypePTR, 0},
		{"mesos.", dns.TypeSOA, 0},
		{"mesos.", dns.TypeNS, 4096},
		{"nope.marathon.mesos.", dns.TypeA, 0},
		{"app01.group.marathon.mesos.", dns.TypeAAAA, 1232},
		{"group.marathon.mesos.", dns.TypeA, 0},
	} {
		pkt := packQuery(t, q.name, q.qtype, q.edns)
		w.serve(pkt, out, loopback, false) // packs
		if n := testing.AllocsPerRun(100, func() { w.serve(pkt, out, loopback, false) }); n != 0 {
			t.Errorf("%s %s: %v allocations per query", q.name, dns.TypeToString[q.qtype], n)
		}
	}
}

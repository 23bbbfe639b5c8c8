package dnsserver

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startServer runs srv on loopback port 0 until the test ends.
func startServer(t *testing.T, srv *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server not ready")
	}
}

// startUpstream runs a resolver on loopback that answers every A question
// with 192.0.2.1, and returns its address.
func startUpstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = up.ActivateAndServe() }()
	t.Cleanup(func() { _ = up.Shutdown() })
	return pc.LocalAddr().String()
}

func TestServerEndToEnd(t *testing.T) {
	s := fixture(t)
	bigApp(t, s, 85)
	cfg := testConfig
	cfg.UDPSockets = 2
	cfg.Resolvers = []string{startUpstream(t)}
	// 127.0.0.2 is an outsider.
	cfg.RecursionCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	srv, err := NewServer(cfg, NewForwarder(cfg.Resolvers, time.Second, nil), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	startServer(t, srv)
	udp, tcp := srv.UDPAddr().(*net.UDPAddr), srv.TCPAddr().(*net.TCPAddr)
	if udp.Port != tcp.Port || udp.Port == 0 {
		t.Fatalf("UDP on %v, TCP on %v: want one port", udp, tcp)
	}
	addr := udp.String()

	ask := func(net, name string, qtype uint16, edns uint16) *dns.Msg {
		t.Helper()
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		if edns > 0 {
			q.SetEdns0(edns, false)
		}
		c := &dns.Client{Net: net, Timeout: 2 * time.Second, UDPSize: 65535}
		m, _, err := c.Exchange(q, addr)
		if err != nil {
			t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], net, err)
		}
		return m
	}

	// Before the first snapshot: SERVFAIL for the domain, forwarding works.
	if m := ask("udp", "leader.mesos.", dns.TypeA, 0); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("before sync: %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if m := ask("udp", "example.com.", dns.TypeA, 0); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Errorf("forwarding before sync: %v", m)
	}

	srv.Handler().Reset(s)
	for _, net := range []string{"udp", "tcp"} {
		if m := ask(net, "App01.Group.Marathon.Mesos.", dns.TypeA, 0); len(m.Answer) != 2 || !m.Authoritative || m.Answer[0].Header().Name != "App01.Group.Marathon.Mesos." {
			t.Errorf("%s: A: %v", net, m)
		}
		if m := ask(net, "nope.mesos.", dns.TypeSRV, 0); m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
			t.Errorf("%s: NXDOMAIN: %v", net, m)
		}
		if m := ask(net, "example.com.", dns.TypeA, 1232); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.IsEdns0() == nil {
			t.Errorf("%s: forwarded: %v", net, m)
		}
	}
	if m := ask("udp", "_big._tcp.marathon.mesos.", dns.TypeSRV, 0); !m.Truncated {
		t.Errorf("85 SRV over UDP without EDNS: not truncated")
	}
	if m := ask("udp", "_big._tcp.marathon.mesos.", dns.TypeSRV, 4096); m.Truncated || len(m.Answer) != 85 {
		t.Errorf("85 SRV over UDP with EDNS 4096: TC %v, %d answers", m.Truncated, len(m.Answer))
	}
	// Over TCP, every target's address in ADDITIONAL: one per task.
	if m := ask("tcp", "_big._tcp.marathon.mesos.", dns.TypeSRV, 0); m.Truncated || len(m.Answer) != 85 || len(m.Extra) != 85 {
		t.Errorf("85 SRV over TCP: TC %v, %d answers, %d extra", m.Truncated, len(m.Answer), len(m.Extra))
	}

	// A client outside the recursion CIDRs, from another loopback address.
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}}}
	q := new(dns.Msg)
	q.SetQuestion("example.com.", dns.TypeA)
	if m, _, err := c.Exchange(q, addr); err != nil || m.Rcode != dns.RcodeRefused {
		t.Errorf("outsider: %v %v, want REFUSED", m, err)
	}
}

func TestServerPortInUse(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg := testConfig
	cfg.Addr = pc.LocalAddr().String()
	srv, err := NewServer(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(context.Background()); err == nil {
		t.Fatal("Run on a busy port returned nil")
	}
}

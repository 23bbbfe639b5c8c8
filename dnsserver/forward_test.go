package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
)

// fwdUpstream is a real DNS server on 127.0.0.1, UDP and TCP on one port,
// that counts the queries it receives per transport.
type fwdUpstream struct {
	addr     string
	udpHits  atomic.Int32
	tcpHits  atomic.Int32
	lastSize atomic.Int32 // EDNS0 buffer size of the last query, 0 if none
}

func (u *fwdUpstream) hits() int { return int(u.udpHits.Load() + u.tcpHits.Load()) }

// startFwdUpstream serves handle until the test ends. handle may write
// nothing, which to a UDP client is a server that never replies.
func startFwdUpstream(t *testing.T, handle func(w dns.ResponseWriter, r *dns.Msg, udp bool)) *fwdUpstream {
	t.Helper()
	u := &fwdUpstream{}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		_, udp := w.RemoteAddr().(*net.UDPAddr)
		if udp {
			u.udpHits.Add(1)
		} else {
			u.tcpHits.Add(1)
		}
		u.lastSize.Store(0)
		if opt := r.IsEdns0(); opt != nil {
			u.lastSize.Store(int32(opt.UDPSize()))
		}
		handle(w, r, udp)
	})
	pc, ln := fwdListenPair(t)
	u.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		served := make(chan struct{})
		go func() {
			defer close(served)
			_ = srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() {
			_ = srv.Shutdown()
			<-served
		})
	}
	return u
}

// fwdListenPair listens on UDP and TCP on the same free loopback port.
func fwdListenPair(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		lastErr = err
		pc.Close()
	}
	t.Fatalf("no port free for both UDP and TCP: %v", lastErr)
	return nil, nil
}

// fwdClosedAddr is a loopback UDP port with nobody listening: queries to it
// fail at once with "connection refused".
func fwdClosedAddr(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// fwdZone answers like a recursive resolver for a made-up world:
//   - nx.*: NXDOMAIN, SOA TTL 3600 and MINIMUM 30
//   - nxlong.*: NXDOMAIN, SOA MINIMUM 3600 (cached only 300 s)
//   - nxnosoa.*: NXDOMAIN without SOA (not cacheable)
//   - nodata.*: NOERROR, no answer, SOA MINIMUM 20
//   - big.*: 100 A records, truncated to the query's buffer over UDP
//   - anything else: A 192.0.2.1 TTL 60 and A 192.0.2.2 TTL 120
func fwdZone(w dns.ResponseWriter, r *dns.Msg, udp bool) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	q := r.Question[0]
	label := strings.ToLower(strings.SplitN(q.Name, ".", 2)[0])
	soa := func(ttl, minttl uint32) dns.RR {
		return &dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
			Ns: "ns.example.", Mbox: "hostmaster.example.", Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: minttl}
	}
	a := func(ttl uint32, ip string) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.ParseIP(ip)}
	}
	switch label {
	case "nx":
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa(3600, 30)}
	case "nxlong":
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa(3600, 3600)}
	case "nxnosoa":
		m.Rcode = dns.RcodeNameError
	case "nodata":
		m.Ns = []dns.RR{soa(3600, 20)}
	case "big":
		for i := range 100 {
			m.Answer = append(m.Answer, a(300, fmt.Sprintf("198.51.100.%d", i+1)))
		}
	default:
		m.Answer = []dns.RR{a(60, "192.0.2.1"), a(120, "192.0.2.2")}
	}
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), opt.Do())
		size = int(opt.UDPSize())
	}
	if udp {
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// fwdRcode answers every query with rcode and nothing else.
func fwdRcode(rcode int) func(dns.ResponseWriter, *dns.Msg, bool) {
	return func(w dns.ResponseWriter, r *dns.Msg, _ bool) {
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		_ = w.WriteMsg(m)
	}
}

// fwdSilent never replies.
func fwdSilent(dns.ResponseWriter, *dns.Msg, bool) {}

// fwdClock is a settable clock for the cache.
type fwdClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFwdClock() *fwdClock { return &fwdClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fwdClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fwdClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestForwarder forwards to resolvers with a fake clock on the cache.
func newTestForwarder(resolvers []string, timeout time.Duration) (*Forwarder, *Metrics, *fwdClock) {
	m := NewMetrics()
	f := NewForwarder(resolvers, timeout, m)
	clk := newFwdClock()
	f.cache = newFwdCache(0, clk.now)
	return f, m, clk
}

// fwdQuery is a client's query with a fixed ID, with EDNS0 when bufsize > 0.
func fwdQuery(name string, qtype uint16, bufsize uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 4242
	if bufsize > 0 {
		m.SetEdns0(bufsize, false)
	}
	return m
}

func fwdForward(t *testing.T, f *Forwarder, req *dns.Msg) *dns.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := f.Forward(ctx, req)
	if err != nil {
		t.Fatalf("Forward(%s): %v", req.Question[0].Name, err)
	}
	return resp
}

func fwdTTLs(rrs []dns.RR) []uint32 {
	var out []uint32
	for _, rr := range rrs {
		out = append(out, rr.Header().Ttl)
	}
	return out
}

// fwdOutcome reads atoll_dns_forwarded_total{outcome} from the registry.
func fwdOutcome(t *testing.T, m *Metrics, outcome string) int {
	t.Helper()
	for _, mf := range fwdGather(t, m, "atoll_dns_forwarded_total") {
		for _, l := range mf.GetLabel() {
			if l.GetName() == "outcome" && l.GetValue() == outcome {
				return int(mf.GetCounter().GetValue())
			}
		}
	}
	return 0
}

// fwdObservations is the sample count of atoll_dns_forward_seconds.
func fwdObservations(t *testing.T, m *Metrics) int {
	t.Helper()
	n := 0
	for _, mf := range fwdGather(t, m, "atoll_dns_forward_seconds") {
		n += int(mf.GetHistogram().GetSampleCount())
	}
	return n
}

// fwdGather returns the series of one metric family. (testutil would need
// a module go.mod does not list.)
func fwdGather(t *testing.T, m *Metrics, name string) []*dto.Metric {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func TestForwardAnswersThenCaches(t *testing.T) {
	up := startFwdUpstream(t, fwdZone)
	f, m, clk := newTestForwarder([]string{up.addr}, time.Second)

	// Mixed case: the reply keeps the client's spelling and ID.
	req := fwdQuery("WwW.Example.ORG.", dns.TypeA, 4096)
	resp := fwdForward(t, f, req)
	if resp.Id != 4242 || resp.Question[0].Name != "WwW.Example.ORG." || resp.Rcode != dns.RcodeSuccess || !resp.Response {
		t.Fatalf("reply header/question wrong: %v", resp)
	}
	if got := fwdTTLs(resp.Answer); fmt.Sprint(got) != "[60 120]" {
		t.Fatalf("TTLs %v, want [60 120]", got)
	}
	if opt := resp.IsEdns0(); opt == nil || opt.UDPSize() != upstreamUDPSize {
		t.Fatalf("reply OPT %v, want one with size %d", opt, upstreamUDPSize)
	}
	if got := up.lastSize.Load(); got != upstreamUDPSize {
		t.Errorf("upstream saw buffer size %d, want %d", got, upstreamUDPSize)
	}

	// 10 s later, another client (lowercase, no EDNS0) is served from the
	// cache with TTLs aged by 10 s, and without an OPT.
	clk.advance(10 * time.Second)
	req2 := fwdQuery("www.example.org.", dns.TypeA, 0)
	req2.Id = 7
	resp = fwdForward(t, f, req2)
	if up.hits() != 1 {
		t.Fatalf("upstream hits %d, want 1 (second answer from cache)", up.hits())
	}
	if got := fwdTTLs(resp.Answer); fmt.Sprint(got) != "[50 110]" {
		t.Errorf("cached TTLs %v, want [50 110]", got)
	}
	if resp.Id != 7 || resp.Question[0].Name != "www.example.org." || resp.IsEdns0() != nil {
		t.Errorf("cached reply not fitted to its query: %v", resp)
	}

	// At 59 s still cached; at 60 s (the smallest TTL) it has expired.
	clk.advance(49 * time.Second)
	resp = fwdForward(t, f, req)
	if up.hits() != 1 || fmt.Sprint(fwdTTLs(resp.Answer)) != "[1 61]" {
		t.Fatalf("at 59 s: hits %d TTLs %v, want 1 and [1 61]", up.hits(), fwdTTLs(resp.Answer))
	}
	clk.advance(time.Second)
	resp = fwdForward(t, f, req)
	if up.hits() != 2 || fmt.Sprint(fwdTTLs(resp.Answer)) != "[60 120]" {
		t.Fatalf("at 60 s: hits %d TTLs %v, want 2 and fresh [60 120]", up.hits(), fwdTTLs(resp.Answer))
	}
	if a, c := fwdOutcome(t, m, "answered"), fwdOutcome(t, m, "cached"); a != 2 || c != 2 {
		t.Errorf("outcomes answered=%d cached=%d, want 2 and 2", a, c)
	}
	if n := fwdObservations(t, m); n != 2 {
		t.Errorf("ForwardSeconds has %d observations, want 2 (upstream trips only)", n)
	}
}

func TestForwardCachesNegativeAnswers(t *testing.T) {
	tests := []struct {
		name      string
		qname     string
		rcode     int
		cachedFor time.Duration // 0: not cached
		soaTTL    uint32        // SOA TTL in the first reply
	}{
		{"NXDOMAIN for the SOA minimum", "nx.example.org.", dns.RcodeNameError, 30 * time.Second, 30},
		{"NXDOMAIN capped at 5 min", "nxlong.example.org.", dns.RcodeNameError, 5 * time.Minute, 300},
		{"NXDOMAIN without SOA not cached", "nxnosoa.example.org.", dns.RcodeNameError, 0, 0},
		{"NODATA for the SOA minimum", "nodata.example.org.", dns.RcodeSuccess, 20 * time.Second, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startFwdUpstream(t, fwdZone)
			f, _, clk := newTestForwarder([]string{up.addr}, time.Second)
			req := fwdQuery(tt.qname, dns.TypeA, 1232)
			resp := fwdForward(t, f, req)
			if resp.Rcode != tt.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tt.rcode])
			}
			if tt.soaTTL != 0 {
				if len(resp.Ns) != 1 || resp.Ns[0].Header().Ttl != 3600 {
					t.Fatalf("first reply authority %v, want the upstream's SOA", resp.Ns)
				}
			}
			if tt.cachedFor == 0 {
				fwdForward(t, f, req)
				if up.hits() != 2 {
					t.Fatalf("hits %d, want 2 (not cached)", up.hits())
				}
				return
			}
			clk.advance(tt.cachedFor - time.Second)
			resp = fwdForward(t, f, req)
			if up.hits() != 1 {
				t.Fatalf("hits %d just before expiry, want 1", up.hits())
			}
			// The cached SOA carries the negative TTL, aged.
			age := uint32((tt.cachedFor - time.Second) / time.Second)
			if got := resp.Ns[0].Header().Ttl; got != tt.soaTTL-age {
				t.Errorf("cached SOA TTL %d, want %d", got, tt.soaTTL-age)
			}
			clk.advance(time.Second)
			fwdForward(t, f, req)
			if up.hits() != 2 {
				t.Fatalf("hits %d at expiry, want 2", up.hits())
			}
		})
	}
}

func TestForwardFailsOver(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name     string
		first    func(t *testing.T) (addr string, hits func() int)
		slowness time.Duration // how long the first resolver costs, at least
	}{
		{"timeout", func(t *testing.T) (string, func() int) {
			u := startFwdUpstream(t, fwdSilent)
			return u.addr, u.hits
		}, timeout},
		{"SERVFAIL", func(t *testing.T) (string, func() int) {
			u := startFwdUpstream(t, fwdRcode(dns.RcodeServerFailure))
			return u.addr, u.hits
		}, 0},
		{"REFUSED", func(t *testing.T) (string, func() int) {
			u := startFwdUpstream(t, fwdRcode(dns.RcodeRefused))
			return u.addr, u.hits
		}, 0},
		{"connection refused", func(t *testing.T) (string, func() int) {
			return fwdClosedAddr(t), func() int { return 1 }
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			badAddr, badHits := tt.first(t)
			good := startFwdUpstream(t, fwdZone)
			f, m, _ := newTestForwarder([]string{badAddr, good.addr}, timeout)

			start := time.Now()
			resp := fwdForward(t, f, fwdQuery("one.example.org.", dns.TypeA, 0))
			took := time.Since(start)
			if len(resp.Answer) != 2 {
				t.Fatalf("answer %v, want the good resolver's", resp.Answer)
			}
			if badHits() != 1 || good.hits() != 1 {
				t.Fatalf("hits bad=%d good=%d, want 1 and 1 (in order)", badHits(), good.hits())
			}
			// One per-try timeout for a silent resolver, not more: generous
			// upper bound for loaded CI machines.
			if took < tt.slowness || took > tt.slowness+5*time.Second {
				t.Errorf("took %v, want at least %v and not much more", took, tt.slowness)
			}
			// The next query starts from the resolver that answered.
			fwdForward(t, f, fwdQuery("two.example.org.", dns.TypeA, 0))
			if badHits() != 1 || good.hits() != 2 {
				t.Errorf("second query: hits bad=%d good=%d, want 1 and 2", badHits(), good.hits())
			}
			if a := fwdOutcome(t, m, "answered"); a != 2 {
				t.Errorf("answered %d, want 2", a)
			}
		})
	}
}

func TestForwardTruncatedRetriesOverTCP(t *testing.T) {
	up := startFwdUpstream(t, fwdZone)
	f, _, _ := newTestForwarder([]string{up.addr}, time.Second)
	// A client without EDNS0 (512 bytes) still gets the whole answer from
	// Forward; truncating it toward the client is the server's job.
	resp := fwdForward(t, f, fwdQuery("big.example.org.", dns.TypeA, 0))
	if resp.Truncated || len(resp.Answer) != 100 {
		t.Fatalf("TC=%v with %d records, want the whole 100", resp.Truncated, len(resp.Answer))
	}
	if up.udpHits.Load() != 1 || up.tcpHits.Load() != 1 {
		t.Fatalf("udp=%d tcp=%d, want 1 and 1", up.udpHits.Load(), up.tcpHits.Load())
	}
	// The whole answer was cached.
	resp = fwdForward(t, f, fwdQuery("big.example.org.", dns.TypeA, 0))
	if len(resp.Answer) != 100 || up.hits() != 2 {
		t.Fatalf("cached: %d records, %d hits; want 100 and 2", len(resp.Answer), up.hits())
	}
}

func TestForwardAllFail(t *testing.T) {
	servfail := startFwdUpstream(t, fwdRcode(dns.RcodeServerFailure))
	silent := startFwdUpstream(t, fwdSilent)
	f, m, _ := newTestForwarder([]string{servfail.addr, silent.addr}, 200*time.Millisecond)
	_, err := f.Forward(context.Background(), fwdQuery("x.example.org.", dns.TypeA, 0))
	if err == nil {
		t.Fatal("Forward succeeded, want an error")
	}
	// The last error, with context: the question and the last resolver.
	if msg := err.Error(); !strings.Contains(msg, "x.example.org. A") || !strings.Contains(msg, silent.addr) ||
		!strings.Contains(msg, "no answer within 200ms") || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("error %q: want the question, %s and the timeout", msg, silent.addr)
	}
	if servfail.hits() != 1 || silent.hits() != 1 {
		t.Errorf("hits %d %d, want 1 1", servfail.hits(), silent.hits())
	}
	if n := fwdOutcome(t, m, "failed"); n != 1 {
		t.Errorf("failed %d, want 1", n)
	}
	// Failures are not cached.
	if _, err := f.Forward(context.Background(), fwdQuery("x.example.org.", dns.TypeA, 0)); err == nil || servfail.hits() != 2 {
		t.Errorf("second try: err %v, servfail hits %d; want an error and 2", err, servfail.hits())
	}
}

func TestForwardBadInput(t *testing.T) {
	f := NewForwarder(nil, 0, nil) // nil metrics must work
	if _, err := f.Forward(context.Background(), fwdQuery("a.example.", dns.TypeA, 0)); err == nil ||
		!strings.Contains(err.Error(), "no upstream resolvers") {
		t.Errorf("no resolvers: err %v", err)
	}
	if _, err := f.Forward(context.Background(), new(dns.Msg)); err == nil {
		t.Error("no question: want an error")
	}
	if _, err := f.Forward(context.Background(), nil); err == nil {
		t.Error("nil query: want an error")
	}
}

func TestForwardCancelEndsWait(t *testing.T) {
	silent := startFwdUpstream(t, fwdSilent)
	f, _, _ := newTestForwarder([]string{silent.addr, silent.addr}, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := f.Forward(ctx, fwdQuery("x.example.org.", dns.TypeA, 0))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v after cancel at 50ms", took)
	}
	if silent.hits() != 1 {
		t.Errorf("hits %d, want 1 (no further resolver after cancel)", silent.hits())
	}
}

func TestForwardDOBitKeepsSeparateCacheEntries(t *testing.T) {
	up := startFwdUpstream(t, fwdZone)
	f, _, _ := newTestForwarder([]string{up.addr}, time.Second)
	plain := fwdQuery("www.example.org.", dns.TypeA, 1232)
	do := fwdQuery("www.example.org.", dns.TypeA, 0)
	do.SetEdns0(1232, true)
	fwdForward(t, f, plain)
	resp := fwdForward(t, f, do)
	if up.hits() != 2 {
		t.Fatalf("hits %d, want 2 (DO is part of the key)", up.hits())
	}
	if opt := resp.IsEdns0(); opt == nil || !opt.Do() {
		t.Errorf("reply to a DO query lacks DO: %v", opt)
	}
}

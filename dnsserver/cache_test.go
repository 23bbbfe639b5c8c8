package dnsserver

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fwdCacheAnswer is a NOERROR reply to req with one A record per TTL.
func fwdCacheAnswer(req *dns.Msg, ttls ...uint32) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	for i, ttl := range ttls {
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
			A:   net.IPv4(192, 0, 2, byte(i+1)),
		})
	}
	return m
}

func fwdCacheSOA(ttl, minttl uint32) *dns.SOA {
	return &dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns: "ns.example.", Mbox: "h.example.", Minttl: minttl}
}

func TestCacheAnswerTTL(t *testing.T) {
	req := fwdQuery("a.example.", dns.TypeA, 0)
	with := func(f func(m *dns.Msg)) *dns.Msg {
		m := fwdCacheAnswer(req)
		f(m)
		return m
	}
	tests := []struct {
		name string
		resp *dns.Msg
		want uint32 // 0: not cacheable
	}{
		{"min of answers", fwdCacheAnswer(req, 300, 60, 120), 60},
		{"authority and additional count", with(func(m *dns.Msg) {
			m.Answer = fwdCacheAnswer(req, 300).Answer
			m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 100}, Ns: "ns.example."}}
			m.Extra = fwdCacheAnswer(req, 40).Answer
		}), 40},
		{"OPT ignored", with(func(m *dns.Msg) {
			m.Answer = fwdCacheAnswer(req, 300).Answer
			m.SetEdns0(1232, false) // OPT's TTL field holds flags, not a TTL
		}), 300},
		{"positive capped at a day", fwdCacheAnswer(req, 1<<30), fwdMaxPositiveTTL},
		{"zero TTL not cached", fwdCacheAnswer(req, 60, 0), 0},
		{"NXDOMAIN: SOA minimum", with(func(m *dns.Msg) { m.Rcode = dns.RcodeNameError; m.Ns = []dns.RR{fwdCacheSOA(3600, 30)} }), 30},
		{"NXDOMAIN: SOA TTL when lower", with(func(m *dns.Msg) { m.Rcode = dns.RcodeNameError; m.Ns = []dns.RR{fwdCacheSOA(10, 30)} }), 10},
		{"NXDOMAIN: capped at 5 min", with(func(m *dns.Msg) { m.Rcode = dns.RcodeNameError; m.Ns = []dns.RR{fwdCacheSOA(86400, 86400)} }), 300},
		{"NXDOMAIN after CNAME: min with the CNAME", with(func(m *dns.Msg) {
			m.Rcode = dns.RcodeNameError
			m.Answer = []dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 7}, Target: "b.example."}}
			m.Ns = []dns.RR{fwdCacheSOA(3600, 30)}
		}), 7},
		{"NXDOMAIN without SOA", with(func(m *dns.Msg) { m.Rcode = dns.RcodeNameError }), 0},
		{"NODATA: SOA minimum", with(func(m *dns.Msg) { m.Ns = []dns.RR{fwdCacheSOA(3600, 45)} }), 45},
		{"NODATA without SOA", fwdCacheAnswer(req), 0},
		{"SERVFAIL", with(func(m *dns.Msg) { m.Rcode = dns.RcodeServerFailure; m.Answer = fwdCacheAnswer(req, 60).Answer }), 0},
		{"REFUSED", with(func(m *dns.Msg) { m.Rcode = dns.RcodeRefused }), 0},
		{"truncated", with(func(m *dns.Msg) { m.Truncated = true; m.Answer = fwdCacheAnswer(req, 60).Answer }), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := fwdCacheTTL(tt.resp)
			if ok != (tt.want > 0) || got != tt.want {
				t.Errorf("fwdCacheTTL = %d, %v; want %d", got, ok, tt.want)
			}
		})
	}
}

func TestCacheKey(t *testing.T) {
	clk := newFwdClock()
	c := newFwdCache(0, clk.now)
	base := fwdQuery("Www.Example.ORG.", dns.TypeA, 0)
	c.put(base, fwdCacheAnswer(base, 60))

	do := fwdQuery("www.example.org.", dns.TypeA, 0)
	do.SetEdns0(1232, true)
	cd := fwdQuery("www.example.org.", dns.TypeA, 0)
	cd.CheckingDisabled = true
	chaos := fwdQuery("www.example.org.", dns.TypeA, 0)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	tests := []struct {
		name string
		req  *dns.Msg
		hit  bool
	}{
		{"same", base, true},
		{"other case", fwdQuery("WWW.EXAMPLE.ORG.", dns.TypeA, 0), true},
		{"EDNS0 without DO", fwdQuery("www.example.org.", dns.TypeA, 4096), true},
		{"DO", do, false},
		{"CD", cd, false},
		{"other type", fwdQuery("www.example.org.", dns.TypeAAAA, 0), false},
		{"other class", chaos, false},
		{"other name", fwdQuery("ww.example.org.", dns.TypeA, 0), false},
	}
	for _, tt := range tests {
		if got := c.get(tt.req) != nil; got != tt.hit {
			t.Errorf("%s: hit %v, want %v", tt.name, got, tt.hit)
		}
	}
}

func TestCacheExpiresAndAges(t *testing.T) {
	clk := newFwdClock()
	c := newFwdCache(0, clk.now)
	req := fwdQuery("a.example.", dns.TypeA, 0)
	c.put(req, fwdCacheAnswer(req, 10, 3600))
	steps := []struct {
		advance time.Duration
		want    string // TTLs, or "miss"
	}{
		{0, "[10 3600]"},
		{1500 * time.Millisecond, "[9 3599]"}, // whole seconds of age
		{8 * time.Second, "[1 3591]"},         // 9.5 s
		{500 * time.Millisecond, "miss"},      // 10 s: the smallest TTL
	}
	for _, s := range steps {
		clk.advance(s.advance)
		got := "miss"
		if m := c.get(req); m != nil {
			got = fmt.Sprint(fwdTTLs(m.Answer))
		}
		if got != s.want {
			t.Fatalf("after +%v: %s, want %s", s.advance, got, s.want)
		}
	}
	if n := c.len(); n != 0 {
		t.Errorf("expired entry kept: len %d", n)
	}
}

func TestCacheClockBackwards(t *testing.T) {
	clk := newFwdClock()
	c := newFwdCache(0, clk.now)
	req := fwdQuery("a.example.", dns.TypeA, 0)
	c.put(req, fwdCacheAnswer(req, 60))
	clk.advance(-time.Hour)
	if m := c.get(req); m == nil || m.Answer[0].Header().Ttl != 60 {
		t.Fatalf("after the clock stepped back: %v, want the entry as stored", m)
	}
}

func TestCacheCopiesInAndOut(t *testing.T) {
	c := newFwdCache(0, newFwdClock().now)
	req := fwdQuery("a.example.", dns.TypeA, 0)
	resp := fwdCacheAnswer(req, 60)
	resp.SetEdns0(4096, false)
	c.put(req, resp)
	resp.Answer[0].Header().Ttl = 1 // the caller's message is its own

	m := c.get(req)
	if m.Answer[0].Header().Ttl != 60 || m.IsEdns0() != nil {
		t.Fatalf("stored entry aliased the caller's message or kept its OPT: %v", m)
	}
	m.Answer[0].Header().Ttl = 2
	if m := c.get(req); m.Answer[0].Header().Ttl != 60 {
		t.Fatalf("a served copy aliased the entry: TTL %d", m.Answer[0].Header().Ttl)
	}
}

func TestCacheLRUBound(t *testing.T) {
	c := newFwdCache(3, newFwdClock().now)
	q := func(i int) *dns.Msg { return fwdQuery(fmt.Sprintf("n%d.example.", i), dns.TypeA, 0) }
	for i := range 3 {
		c.put(q(i), fwdCacheAnswer(q(i), 60))
	}
	c.get(q(0))                           // n0 is now the most recently used
	c.put(q(3), fwdCacheAnswer(q(3), 60)) // evicts n1, the least recently used
	c.put(q(3), fwdCacheAnswer(q(3), 60)) // replacing does not grow the cache
	for i, want := range []bool{true, false, true, true} {
		if got := c.get(q(i)) != nil; got != want {
			t.Errorf("n%d cached = %v, want %v", i, got, want)
		}
	}
	if n := c.len(); n != 3 {
		t.Errorf("len %d, want 3", n)
	}
	if d := newFwdCache(0, nil); d.max != fwdCacheSize {
		t.Errorf("default size %d, want %d", d.max, fwdCacheSize)
	}
}

// TestCacheConcurrent is for -race: readers and writers on shared keys
// while entries expire and get evicted.
func TestCacheConcurrent(t *testing.T) {
	clk := newFwdClock()
	c := newFwdCache(50, clk.now)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				req := fwdQuery(fmt.Sprintf("n%d.example.", (g*7+i)%100), dns.TypeA, 0)
				if i%3 == 0 {
					c.put(req, fwdCacheAnswer(req, 5))
				} else if m := c.get(req); m != nil {
					m.Answer[0].Header().Ttl = 0 // must not touch the entry
				}
				if i%50 == 0 {
					clk.advance(time.Second)
				}
			}
		}()
	}
	wg.Wait()
	if n := c.len(); n > 50 {
		t.Errorf("len %d above the bound 50", n)
	}
}

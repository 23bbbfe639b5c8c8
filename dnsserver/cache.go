package dnsserver

import (
	"container/list"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	// fwdCacheSize bounds the forward cache: enough for a node's working
	// set of outside names, small enough (a few MB) not to matter.
	fwdCacheSize = 10000
	// fwdMaxNegativeTTL caps how long NXDOMAIN/NODATA is cached (RFC 2308
	// suggests 1-3 hours; names outside the cluster appear, and a short cap
	// keeps a mistaken negative from lingering).
	fwdMaxNegativeTTL = 5 * 60
	// fwdMaxPositiveTTL caps positive answers, as resolvers commonly do
	// (unbound's cache-max-ttl), so a bogus huge TTL cannot pin an entry.
	fwdMaxPositiveTTL = 24 * 60 * 60
)

// fwdKey identifies a forwarded question. DO and CD change what the
// upstream returns (signatures, unvalidated data), so they are part of it;
// the name is lowercased because DNS names compare case-insensitively.
type fwdKey struct {
	name          string
	qtype, qclass uint16
	do, cd        bool
}

type fwdEntry struct {
	key     fwdKey
	msg     *dns.Msg // immutable once stored; served as copies
	stored  time.Time
	expires time.Time
}

// fwdCache is a bounded LRU cache of forwarded answers that honours their
// TTLs. It is safe for concurrent use.
type fwdCache struct {
	now func() time.Time
	max int

	mu    sync.Mutex
	lru   *list.List // of *fwdEntry, most recently used first
	items map[fwdKey]*list.Element
}

// newFwdCache makes a cache of at most max entries (fwdCacheSize if
// max <= 0) reading time from now (time.Now if nil; tests inject a clock).
func newFwdCache(max int, now func() time.Time) *fwdCache {
	if max <= 0 {
		max = fwdCacheSize
	}
	if now == nil {
		now = time.Now
	}
	return &fwdCache{now: now, max: max, lru: list.New(), items: make(map[fwdKey]*list.Element)}
}

// fwdKeyOf returns the cache key of a one-question query.
func fwdKeyOf(req *dns.Msg) fwdKey {
	q := req.Question[0]
	k := fwdKey{name: strings.ToLower(dns.Fqdn(q.Name)), qtype: q.Qtype, qclass: q.Qclass, cd: req.CheckingDisabled}
	if opt := req.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	return k
}

// get returns a private copy of the fresh answer to req with every TTL
// decremented by the entry's age, or nil. The copy has no OPT record.
func (c *fwdCache) get(req *dns.Msg) *dns.Msg {
	k := fwdKeyOf(req)
	now := c.now()
	c.mu.Lock()
	el, ok := c.items[k]
	if !ok {
		c.mu.Unlock()
		return nil
	}
	e := el.Value.(*fwdEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.items, k)
		c.mu.Unlock()
		return nil
	}
	c.lru.MoveToFront(el)
	c.mu.Unlock()

	// Copy outside the lock: e.msg is never modified after put.
	m := e.msg.Copy()
	age := now.Sub(e.stored)
	if age < 0 { // a clock stepped back: serve as stored
		age = 0
	}
	fwdAge(m, uint32(age/time.Second))
	return m
}

// put stores resp as the answer to req if it is cacheable: NOERROR or
// NXDOMAIN, not truncated, and with a TTL above zero. resp is copied.
func (c *fwdCache) put(req, resp *dns.Msg) {
	ttl, ok := fwdCacheTTL(resp)
	if !ok {
		return
	}
	m := resp.Copy()
	fwdStripOPT(m)
	if fwdNegative(m) {
		// RFC 2308 §5: a cached negative answer's SOA carries the negative
		// TTL, so clients do not keep it longer than we do.
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok && soa.Hdr.Ttl > ttl {
				soa.Hdr.Ttl = ttl
			}
		}
	}
	now := c.now()
	e := &fwdEntry{key: fwdKeyOf(req), msg: m, stored: now, expires: now.Add(time.Duration(ttl) * time.Second)}

	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[e.key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.items[e.key] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.items, old.Value.(*fwdEntry).key)
	}
}

// len is the number of entries, fresh or not yet evicted.
func (c *fwdCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// fwdCacheTTL is how long resp may be cached, in seconds: the smallest TTL of
// its records, and for a negative answer also the SOA's negative TTL
// (min(SOA TTL, SOA MINIMUM), RFC 2308 §5) capped at fwdMaxNegativeTTL. A
// negative answer without an SOA is not cached (RFC 2308 §5).
func fwdCacheTTL(resp *dns.Msg) (uint32, bool) {
	if resp.Truncated || (resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError) {
		return 0, false
	}
	ttl := uint32(fwdMaxPositiveTTL)
	for _, sec := range [][]dns.RR{resp.Answer, resp.Ns, resp.Extra} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			ttl = min(ttl, rr.Header().Ttl)
		}
	}
	if fwdNegative(resp) {
		var soa *dns.SOA
		for _, rr := range resp.Ns {
			if s, ok := rr.(*dns.SOA); ok {
				soa = s
				break
			}
		}
		if soa == nil {
			return 0, false
		}
		ttl = min(ttl, soa.Minttl, fwdMaxNegativeTTL)
	}
	return ttl, ttl > 0
}

// fwdNegative reports NXDOMAIN or NODATA (NOERROR with an empty answer).
func fwdNegative(m *dns.Msg) bool {
	return m.Rcode == dns.RcodeNameError || (m.Rcode == dns.RcodeSuccess && len(m.Answer) == 0)
}

// fwdAge lowers every record's TTL by age seconds (not below zero).
func fwdAge(m *dns.Msg, age uint32) {
	if age == 0 {
		return
	}
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			h.Ttl -= min(h.Ttl, age)
		}
	}
}

// fwdStripOPT drops the OPT record: it describes one hop, not the answer.
func fwdStripOPT(m *dns.Msg) {
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	clear(m.Extra[len(extra):])
	m.Extra = extra
}

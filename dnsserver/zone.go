package dnsserver

import (
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Zone is the cluster's records at one point of the event stream. A Zone
// never changes once built: Apply makes a new one that shares everything
// the event did not touch, so readers (the DNS hot path, the HTTP API) hold
// one without locks for as long as they like.
//
// Which names the zone answers: every name at or below the domain, and the
// exact reverse names (PTR) of the cluster's addresses that it holds records
// for. Other reverse names are not in the zone: they belong to whoever runs
// in-addr.arpa for those networks, so the server forwards them.
type Zone struct {
	cfg    *zoneConfig
	serial uint32
	soa    *dns.SOA
	names  cowMap[node]
	count  int

	// What each owner built, so that an event can replace it.
	apps   cowMap[*appEntry] // app id -> its tasks and names
	hashes cowMap[appSet]    // task hash -> the apps with a task of that hash (canon.go)
	agents cowMap[*agentEntry]
	leader []string // names
}

// appEntry is what the zone knows of an app: the ids of its tasks in the
// state (sorted), its task names, dashed and dotted ("" when they are
// one), what its serving tasks' canonical names answer (canon.go), by
// hash, and the names its records live at beyond those every app has
// (formNames: at 50,000 tasks, a list of them all would take megabytes to
// say what the task names say), sorted.
type appEntry struct {
	tasks  []string
	extra  []string
	task   [2]string
	canon  []canonTask
	hashes [][5]byte // of every task, sorted, each once
}

// agentEntry is what the zone knows of an agent: the names it owns, and
// the view its tasks' records were built from.
type agentEntry struct {
	names []string
	view  agentView
	tail  string // agentIDTail of its id: its tasks' canonical names share it
}

// agentView is what of an agent decides its tasks' records; the zero view
// stands for an agent that serves nothing (inactive or gone).
type agentView struct {
	active   bool
	ip, name string
}

// zoneConfig is Config in the form the zone uses: lowercase FQDNs.
type zoneConfig struct {
	ttl         uint32
	origin      string     // "mesos."
	originWire  []byte     // origin in wire format, for the packet parser
	fw          string     // "marathon"
	fwOrigin    string     // "marathon.mesos."
	slaveOrigin string     // "slave.mesos."
	fwSlave     string     // "marathon.slave.mesos."
	ns1         string     // "ns1.mesos."
	ns1Addr     netip.Addr // the address ns1 resolves to
}

func newZoneConfig(cfg Config) *zoneConfig {
	cfg = cfg.withDefaults()
	domain := strings.ToLower(strings.Trim(cfg.Domain, "."))
	fw := domainFrag(cfg.Framework)
	if fw == "" {
		fw = DefaultFramework
	}
	c := &zoneConfig{
		ttl:         cfg.TTL,
		origin:      domain + ".",
		fw:          fw,
		fwOrigin:    fw + "." + domain + ".",
		slaveOrigin: "slave." + domain + ".",
		fwSlave:     fw + ".slave." + domain + ".",
		ns1:         "ns1." + domain + ".",
		ns1Addr:     ns1Addr(cfg.Addr),
	}
	c.originWire = make([]byte, len(c.origin)+1)
	if _, err := dns.PackDomainName(c.origin, c.originWire, 0, nil, false); err != nil {
		c.originWire = []byte{0} // an unusable domain: the fast path never matches
	}
	c.originWire = c.originWire[:len(c.origin)+1]
	return c
}

// ns1Addr is the address of ns1.<domain>, the name server named in the SOA
// and NS records: the address the server listens on, or loopback when it
// listens on every address (the sidecar serves its own node).
func ns1Addr(addr string) netip.Addr {
	host, _, err := net.SplitHostPort(addr)
	if err == nil {
		if a, ok := parseIP(host); ok && !a.IsUnspecified() {
			return a
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// Result is the answer to a lookup. Exists reports whether the name exists
// with records of any type (or names below it); Answer holds the records of
// the asked type, Extra the addresses of their targets (SRV, NS).
type Result struct {
	Exists        bool
	Answer, Extra []dns.RR
}

// Lookup answers name (a lowercase FQDN) and qtype (TypeANY for all types).
// The records are new: the caller may change them.
func (z *Zone) Lookup(name string, qtype uint16) Result {
	n, ok := z.names.get(name)
	var recs, canon []rec
	if ok && n.data != nil {
		recs = n.data.recs
	}
	if c := z.canonLookup([]byte(name), &canon); c.exists {
		ok = true
		if len(canon) > 0 {
			recs = normalizeRecs(append(slices.Clone(recs), canon...))
		}
	}
	if !ok {
		return Result{}
	}
	res := Result{Exists: true}
	for _, r := range recs {
		if !r.matches(qtype) {
			continue
		}
		res.Answer = append(res.Answer, r.rr(name, z.cfg.ttl, z.soa))
		if qtype != dns.TypeANY {
			res.Extra = appendExtra(res.Extra, r, name, z.cfg.ttl)
		}
	}
	return res
}

// appendExtra adds the address record of the target of r at owner, once
// per target.
func appendExtra(extra []dns.RR, r rec, owner string, ttl uint32) []dns.RR {
	rr := r.extraRR(owner, ttl)
	if rr == nil {
		return extra
	}
	for _, e := range extra {
		if e.Header().Name == rr.Header().Name {
			return extra
		}
	}
	return append(extra, rr)
}

// InZone reports whether the zone answers for name (a lowercase FQDN): the
// domain and everything below it, and the reverse names it holds PTR
// records for.
func (z *Zone) InZone(name string) bool {
	if isSubdomain(name, z.cfg.origin) {
		return true
	}
	if !isReverseName(name) {
		return false
	}
	_, ok := z.names.get(name)
	return ok
}

// SOA is the zone's SOA record; its serial is the low 32 bits of the state's
// seq. The caller must not change it.
func (z *Zone) SOA() *dns.SOA { return z.soa }

// Origin is the zone's domain as a lowercase FQDN ("mesos.").
func (z *Zone) Origin() string { return z.cfg.origin }

// Len is the number of records in the zone, the SOA included.
func (z *Zone) Len() int { return z.count }

// Records lists every record of the zone: the SOA first, then by name and
// within a name by type and data. It is what AXFR and /v1/enumerate show.
func (z *Zone) Records() []dns.RR {
	type named struct {
		name string
		recs []rec
	}
	var nodes []named
	canon := map[string][]rec{}
	z.apps.each(func(_ string, e *appEntry) {
		z.canonNames(e, func(name string, recs []rec) { canon[name] = append(canon[name], recs...) })
	})
	z.names.each(func(name string, n node) {
		if n.data == nil {
			return
		}
		recs := n.data.recs
		if c, ok := canon[name]; ok {
			recs = append(slices.Clone(recs), c...)
			delete(canon, name)
		}
		nodes = append(nodes, named{name, recs})
	})
	for name, recs := range canon {
		nodes = append(nodes, named{name, recs})
	}
	slices.SortFunc(nodes, func(a, b named) int { return strings.Compare(a.name, b.name) })
	out := make([]dns.RR, 0, z.count)
	out = append(out, dns.Copy(z.soa))
	for _, n := range nodes {
		for _, r := range normalizeRecs(n.recs) {
			if r.typ != dns.TypeSOA {
				out = append(out, r.rr(n.name, z.cfg.ttl, z.soa))
			}
		}
	}
	return out
}

// newSOA is the SOA of a zone at serial, with Mesos-DNS's timers.
func newSOA(c *zoneConfig, serial uint32) *dns.SOA {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: c.origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: c.ttl},
		Ns:      c.ns1,
		Mbox:    "root." + c.ns1,
		Serial:  serial,
		Refresh: 60,
		Retry:   600,
		Expire:  86400,
		Minttl:  c.ttl,
	}
}

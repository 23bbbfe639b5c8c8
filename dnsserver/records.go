package dnsserver

import (
	"bytes"
	"cmp"
	"hash/maphash"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// rec is one record's data, kept compact (40 bytes, one pointer): a zone of
// 50,000 tasks holds some 150,000 of them, and dns.RR values would cost
// several times the memory and the garbage collector's time. Records become
// dns.RR (or wire bytes) only when asked for.
//
// For SRV and NS the target's address rides along, so an answer's
// ADDITIONAL section is known from the record alone and two records compare
// equal only when their additional data is equal too: a node whose records
// are unchanged keeps its packed answers, safely. (A target with both an
// IPv4 and an IPv6 address, a task with addresses of its own, has the first
// one in ADDITIONAL; the other is a query away.)
type rec struct {
	target string   // SRV, PTR, NS: lowercase FQDN
	ip     [16]byte // A/AAAA: the address; SRV/NS: the target's, if fam != 0
	typ    uint16   // dns.TypeA, TypeAAAA, TypeSRV, TypePTR, TypeNS or TypeSOA
	port   uint16   // SRV
	fam    uint8    // SRV/NS: 4 or 6 when ip holds the target's address (famAddr), and flags
}

// Flags in rec.fam beside the target address's family (famAddr): an SRV
// record whose target is relative to its owner. A task's SRV records point
// to its canonical names, <task>-<hash>-<tail>.<fw>[.slave].<domain>:
// famTaskRelative keeps "-<hash>-<tail>" only, the task name and the domain
// taken from the owner (_<task>._tcp.<domain>, _<port>._<task>._udp.<domain>),
// so that the records of a task's dashed and dotted names, under
// <fw>.<domain> and <fw>.slave.<domain>, are one slice when the task uses
// its agent's address; famRelative keeps a whole label (a canonical label
// that had to be shortened), the domain taken from the owner.
const (
	famAddr         = 0x0f
	famRelative     = 0x80
	famTaskRelative = 0x40
)

// relativeSRV is an SRV record to label below its owner's framework
// domain, whose address is addrs[0].
func relativeSRV(port uint16, label string, addrs []netip.Addr) rec {
	r := targetRec(dns.TypeSRV, port, label, addrs)
	r.fam |= famRelative
	return r
}

// taskRelativeSRV is an SRV record to <owner's task name><suffix> below
// its owner's framework domain, whose address is addrs[0].
func taskRelativeSRV(port uint16, suffix string, addrs []netip.Addr) rec {
	r := targetRec(dns.TypeSRV, port, suffix, addrs)
	r.fam |= famTaskRelative
	return r
}

// targetFor is r's target in a record at owner.
func (r rec) targetFor(owner string) string {
	if r.fam&(famRelative|famTaskRelative) == 0 {
		return r.target
	}
	i := max(strings.LastIndex(owner, "._tcp."), strings.LastIndex(owner, "._udp."))
	if i < 0 {
		return r.target + "." // not at an SRV name: cannot happen
	}
	domain := owner[i+len("._tcp"):]
	if r.fam&famTaskRelative != 0 {
		// Task names hold no '_': the task's label starts after the last.
		return owner[strings.LastIndexByte(owner[:i], '_')+1:i] + r.target + domain
	}
	return r.target + domain
}

// addrRec is the A or AAAA record of addr.
func addrRec(addr netip.Addr) rec {
	r := rec{typ: dns.TypeAAAA, ip: addr.As16()}
	if addr.Is4() {
		r.typ = dns.TypeA
	}
	return r
}

// targetRec is an SRV or NS record whose target has the addresses addrs;
// the first one is kept for ADDITIONAL.
func targetRec(typ, port uint16, target string, addrs []netip.Addr) rec {
	r := rec{typ: typ, port: port, target: target}
	if len(addrs) > 0 {
		r.ip, r.fam = addrs[0].As16(), 6
		if addrs[0].Is4() {
			r.fam = 4
		}
	}
	return r
}

// addr is the address of an A/AAAA record, or of an SRV/NS target
// (invalid when unknown).
func (r rec) addr() netip.Addr {
	switch {
	case r.typ == dns.TypeA || r.fam&famAddr == 4:
		return netip.AddrFrom16(r.ip).Unmap()
	case r.typ == dns.TypeAAAA || r.fam&famAddr == 6:
		return netip.AddrFrom16(r.ip)
	}
	return netip.Addr{}
}

// matches reports whether r answers a question of type qtype.
func (r rec) matches(qtype uint16) bool {
	return qtype == dns.TypeANY || r.typ == qtype
}

func compareRec(a, b rec) int {
	if c := cmp.Compare(a.typ, b.typ); c != 0 {
		return c
	}
	if c := bytes.Compare(a.ip[:], b.ip[:]); c != 0 {
		return c
	}
	if c := cmp.Compare(a.target, b.target); c != 0 {
		return c
	}
	if c := cmp.Compare(a.port, b.port); c != 0 {
		return c
	}
	return cmp.Compare(a.fam, b.fam)
}

// normalizeRecs sorts recs in place and drops duplicates: an RRset holds
// each record once (RFC 2181 §5), however many tasks share an agent. The
// result has no spare capacity, since a zone keeps it for long: it is recs
// itself when that has none, else a copy.
func normalizeRecs(recs []rec) []rec {
	slices.SortFunc(recs, compareRec)
	recs = slices.Compact(recs)
	if len(recs) == cap(recs) {
		return recs
	}
	out := make([]rec, len(recs))
	copy(out, recs)
	return out
}

// recSeed seeds hashRecs.
var recSeed = maphash.MakeSeed()

// hashRecs hashes a record set: equal sets hash equal.
func hashRecs(recs []rec) uint64 {
	var h maphash.Hash
	h.SetSeed(recSeed)
	for _, r := range recs {
		h.Write(r.ip[:])
		h.WriteString(r.target)
		h.Write([]byte{byte(r.typ >> 8), byte(r.typ), byte(r.port >> 8), byte(r.port), r.fam, byte(len(r.target))})
	}
	return h.Sum64()
}

// srvWeight is the weight of every SRV record, as Mesos-DNS's
// resolver.formatSRV gives all its SRV answers its SRVRecordDefaultWeight
// (1: what real Mesos-DNS answered in issue 12's side-by-side run).
const srvWeight = 1

// rr makes the dns.RR of r at owner. soa is the zone's SOA, used for the
// SOA marker record.
func (r rec) rr(owner string, ttl uint32, soa *dns.SOA) dns.RR {
	hdr := dns.RR_Header{Name: owner, Rrtype: r.typ, Class: dns.ClassINET, Ttl: ttl}
	switch r.typ {
	case dns.TypeA:
		return &dns.A{Hdr: hdr, A: net.IP(r.addr().AsSlice())}
	case dns.TypeAAAA:
		return &dns.AAAA{Hdr: hdr, AAAA: net.IP(r.addr().AsSlice())}
	case dns.TypeSRV:
		return &dns.SRV{Hdr: hdr, Weight: srvWeight, Port: r.port, Target: r.targetFor(owner)}
	case dns.TypePTR:
		return &dns.PTR{Hdr: hdr, Ptr: r.target}
	case dns.TypeNS:
		return &dns.NS{Hdr: hdr, Ns: r.target}
	case dns.TypeSOA:
		return dns.Copy(soa)
	}
	return nil
}

// extraRR is the address record of r's target in a record at owner, for
// ADDITIONAL; nil if there is none.
func (r rec) extraRR(owner string, ttl uint32) dns.RR {
	if r.fam&famAddr == 0 || (r.typ != dns.TypeSRV && r.typ != dns.TypeNS) {
		return nil
	}
	return addrRec(r.addr()).rr(r.targetFor(owner), ttl, nil)
}

// parseIP parses an address as agents and tasks report it; IPv4-mapped
// IPv6 addresses count as IPv4 and zones are dropped.
func parseIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

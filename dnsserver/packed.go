package dnsserver

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Pre-packed answers. The first query for a (name, type) packs the whole
// response once: header, the question in lowercase, the answers with their
// owners compressed to a pointer at the question, and the targets'
// addresses in ADDITIONAL. Every later query copies those bytes and patches
// what is its own: the ID, the RD and CD flags, the question's letter case
// (the owners point at it, so they carry the case too), an OPT record, and
// truncation. That allocates nothing.
//
// The cache belongs to the name's nodeData, which is shared by every zone
// in which the name's records did not change, so a task event repacks only
// the names it touched, and only when someone asks for them.

// maxRotations bounds how many orders of an RRset are kept packed: answers
// rotate between queries (clients tend to take the first), and eight
// starting points spread the load without packing 100 copies of 100 SRVs.
// Each socket's worker picks the next rotation with a counter of its own,
// so that the hot path shares no written cache line between cores.
const maxRotations = 8

// Cached types; other types are answered by the slow path or by hand.
const (
	slotA = iota
	slotAAAA
	slotSRV
	slotPTR
	slotNS
	numSlots
)

func slotOf(qtype uint16) int {
	switch qtype {
	case dns.TypeA:
		return slotA
	case dns.TypeAAAA:
		return slotAAAA
	case dns.TypeSRV:
		return slotSRV
	case dns.TypePTR:
		return slotPTR
	case dns.TypeNS:
		return slotNS
	}
	return -1
}

// answerCache holds a name's packed answers, each built on first use.
type answerCache struct {
	slots [numSlots]atomic.Pointer[packedAnswer]
}

// packedAnswer is one (name, type)'s response in up to maxRotations orders.
type packedAnswer struct {
	rots []packedRot
}

// packedRot is one complete response with its section boundaries.
type packedRot struct {
	msg       []byte
	qEnd      int   // end of the question
	ansEnd    int   // end of ANSWER, start of ADDITIONAL
	extraEnds []int // end of each ADDITIONAL record
	ancount   uint16
}

// packed returns the packed answer of qtype (which must have a slot) at
// name, building it if needed; nil if the name has no such records or they
// cannot be packed.
func (d *nodeData) packed(name string, qtype uint16, ttl uint32) *packedAnswer {
	slot := slotOf(qtype)
	c := d.cache.Load()
	if c == nil {
		d.cache.CompareAndSwap(nil, &answerCache{})
		c = d.cache.Load()
	}
	if p := c.slots[slot].Load(); p != nil {
		return p
	}
	p := packAnswer(name, qtype, d.recs, ttl)
	if p == nil {
		return nil
	}
	// Two first queries may race: both pack, one copy wins, both are
	// the same bytes.
	if !c.slots[slot].CompareAndSwap(nil, p) {
		p = c.slots[slot].Load()
	}
	return p
}

// packAnswer packs the rotations of name's records of qtype.
func packAnswer(name string, qtype uint16, recs []rec, ttl uint32) *packedAnswer {
	var matched []rec
	for _, r := range recs {
		if r.typ == qtype {
			matched = append(matched, r)
		}
	}
	if len(matched) == 0 {
		return nil
	}
	n := min(len(matched), maxRotations)
	p := &packedAnswer{rots: make([]packedRot, 0, n)}
	for i := range n {
		// Spread the starting points over the whole set.
		start := i * len(matched) / n
		order := append(append([]rec(nil), matched[start:]...), matched[:start]...)
		rot, ok := packRotation(name, qtype, order, ttl)
		if !ok {
			return nil
		}
		p.rots = append(p.rots, rot)
	}
	return p
}

func packRotation(name string, qtype uint16, order []rec, ttl uint32) (packedRot, bool) {
	m := &dns.Msg{Compress: true}
	m.Response = true
	m.Authoritative = true
	m.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}
	for _, r := range order {
		m.Answer = append(m.Answer, r.rr(name, ttl, nil))
		m.Extra = appendExtra(m.Extra, r, ttl)
	}
	msg, err := m.Pack()
	if err != nil {
		return packedRot{}, false
	}
	rot := packedRot{msg: msg, ancount: uint16(len(m.Answer))}
	off := skipName(msg, headerLen)
	if off < 0 {
		return packedRot{}, false
	}
	rot.qEnd = off + 4
	off = rot.qEnd
	for range m.Answer {
		if off = skipRR(msg, off); off < 0 {
			return packedRot{}, false
		}
	}
	rot.ansEnd = off
	for range m.Extra {
		if off = skipRR(msg, off); off < 0 {
			return packedRot{}, false
		}
		rot.extraEnds = append(rot.extraEnds, off)
	}
	return rot, off == len(msg)
}

// appendHeader writes a response header and copies the query's question
// (its letter case included) from pkt.
func appendHeader(out, pkt []byte, q *query, flags uint16, an, ns, ar uint16) []byte {
	out = binary.BigEndian.AppendUint16(out[:0], q.id)
	out = binary.BigEndian.AppendUint16(out, flags)
	out = binary.BigEndian.AppendUint16(out, 1)
	out = binary.BigEndian.AppendUint16(out, an)
	out = binary.BigEndian.AppendUint16(out, ns)
	out = binary.BigEndian.AppendUint16(out, ar)
	return append(out, pkt[headerLen:q.qEnd]...)
}

// appendOPT adds our OPT record when the query had one: our buffer size,
// extended rcode 0, version 0, no DO bit (no DNSSEC here), no options.
func appendOPT(out []byte, q *query) []byte {
	if !q.edns {
		return out
	}
	out = append(out, 0)
	out = binary.BigEndian.AppendUint16(out, typeOPT)
	out = binary.BigEndian.AppendUint16(out, maxUDPSize)
	out = binary.BigEndian.AppendUint32(out, 0)
	return binary.BigEndian.AppendUint16(out, 0)
}

func optLen(q *query) int {
	if q.edns {
		return optRRLen
	}
	return 0
}

// composeAnswer writes the reply to q from a packed rotation into out,
// within limit bytes. ADDITIONAL records that do not fit are left out (they
// are optional, RFC 2181 §9); if the answers themselves do not fit, the
// reply is the header and question with TC set, and the client retries over
// TCP.
func composeAnswer(out, pkt []byte, q *query, rot *packedRot, flags uint16, limit int) []byte {
	opt := optLen(q)
	end, ar := len(rot.msg), len(rot.extraEnds)
	for ar > 0 && end+opt > limit {
		ar--
		end = rot.ansEnd
		if ar > 0 {
			end = rot.extraEnds[ar-1]
		}
	}
	if end+opt > limit {
		return appendOPT(appendHeader(out, pkt, q, flags|flagTC, 0, 0, uint16(opt/optRRLen)), q)
	}
	out = append(out[:0], rot.msg[:end]...)
	binary.BigEndian.PutUint16(out, q.id)
	binary.BigEndian.PutUint16(out[2:], flags)
	binary.BigEndian.PutUint16(out[10:], uint16(ar+opt/optRRLen))
	copy(out[headerLen:q.qEnd], pkt[headerLen:q.qEnd])
	return appendOPT(out, q)
}

// soaRRLen is the size of composeSOA's record.
const soaRRLen = 2 + 10 + (4 + 2) + (5 + 2) + 20

// composeSOA appends the zone's SOA record, compressed against the
// question: apexOff is where the zone's origin starts in the question, so
// the owner is a pointer there, mname is "ns1" and a pointer there, and
// rname "root" and a pointer to mname. Nothing is allocated.
func composeSOA(out []byte, z *Zone, apexOff int) []byte {
	ptr := func(off int) uint16 { return 0xC000 | uint16(off) }
	out = binary.BigEndian.AppendUint16(out, ptr(apexOff))
	out = binary.BigEndian.AppendUint16(out, dns.TypeSOA)
	out = binary.BigEndian.AppendUint16(out, dns.ClassINET)
	out = binary.BigEndian.AppendUint32(out, z.cfg.ttl)
	out = binary.BigEndian.AppendUint16(out, soaRRLen-12)
	mname := len(out)
	out = append(out, 3, 'n', 's', '1')
	out = binary.BigEndian.AppendUint16(out, ptr(apexOff))
	out = append(out, 4, 'r', 'o', 'o', 't')
	out = binary.BigEndian.AppendUint16(out, ptr(mname))
	out = binary.BigEndian.AppendUint32(out, z.soa.Serial)
	out = binary.BigEndian.AppendUint32(out, z.soa.Refresh)
	out = binary.BigEndian.AppendUint32(out, z.soa.Retry)
	out = binary.BigEndian.AppendUint32(out, z.soa.Expire)
	return binary.BigEndian.AppendUint32(out, z.soa.Minttl)
}

// composeNoAnswer writes a reply without answers: NXDOMAIN or NODATA with
// the SOA in AUTHORITY when apexOff >= 0, SERVFAIL, REFUSED. soaAnswer puts
// the SOA in ANSWER instead (a question for the apex's SOA). These replies
// are far below 512 bytes: no truncation.
func composeNoAnswer(out, pkt []byte, q *query, z *Zone, flags uint16, apexOff int, soaAnswer bool) []byte {
	var an, ns uint16
	switch {
	case apexOff < 0:
	case soaAnswer:
		an = 1
	default:
		ns = 1
	}
	out = appendHeader(out, pkt, q, flags, an, ns, uint16(optLen(q)/optRRLen))
	if apexOff >= 0 {
		out = composeSOA(out, z, apexOff)
	}
	return appendOPT(out, q)
}

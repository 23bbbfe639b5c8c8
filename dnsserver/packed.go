package dnsserver

import (
	"encoding/binary"
	"maps"

	"github.com/miekg/dns"
)

// Pre-packed answers. The first query for a (name, type) packs the
// response once: the answers with their owners compressed to a pointer at
// the question, and the targets' addresses in ADDITIONAL. Every later query
// writes a header and copies its own question (its letter case included:
// the owners point at it, so they carry the case too), then those bytes in
// the rotation of the moment, then an OPT record if it had one; truncation
// leaves ADDITIONAL records out, or everything. That allocates nothing.
// The packed bytes stand where they will in the reply: after the question,
// which has the same length in every query for the name.
//
// Answers rotate between queries (clients tend to take the first), and one
// packing serves every rotation: each answer record is packed so that its
// compression pointers lead into the question only, never into another
// answer, so the records can be copied in any order. Rotation k is the
// answers from the k-th on, then those before it: two copies. ADDITIONAL
// stays where it is, as the ANSWER section keeps its length, but its owners
// (the SRV and NS targets) point into the answers, at the targets: those
// pointers are patched to where their answer went. Every answer takes its
// turn first; each socket's worker picks the rotation with a counter of its
// own, so that the hot path shares no written cache line between cores.
//
// The cache belongs to the name's nodeData, which is shared by every zone
// in which the name's records did not change, so a task event repacks only
// the names it touched, and only when someone asks for them. A zone of
// 50,000 tasks holds tens of thousands of packed answers, so each is one
// struct and one byte slice.

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

// answerCache is a name's packed answers, a list with one element per type
// asked for, built on first use, that only grows: a name rarely holds more
// than one of the cached types. Its type is packedAnswer.qtype, which sits
// in that struct's padding: the element is 48 bytes, not 64 (a zone of
// 50,000 tasks holds some 300,000 of them once every name was asked for).
type answerCache struct {
	next *answerCache
	packedAnswer
}

// packedAnswer is the answer to one (name, type), answers in zone order.
type packedAnswer struct {
	// b is a table of offsets in the reply, each a big-endian uint16: the
	// end of each ANSWER record (an of them), the end of each ADDITIONAL
	// record (ar), then a pair (where, target) for each compression pointer
	// in ADDITIONAL that leads into ANSWER. b[recs:] is the records, as
	// they follow the question, which ends at qEnd.
	b      []byte
	recs   uint16
	qEnd   uint16
	an, ar uint16
	qtype  uint16 // the type asked for
	rotate bool   // the answers can be served in any rotation
	// anyName: the records point at the question's start only (A and
	// AAAA), so they serve a question for any name, of any length: names
	// with the same addresses share one packing (see nodeData).
	anyName bool
}

// off is entry i of the table.
func (p *packedAnswer) off(i int) int { return int(binary.BigEndian.Uint16(p.b[2*i:])) }

// ansStart is where answer i starts in the reply.
func (p *packedAnswer) ansStart(i int) int {
	if i == 0 {
		return int(p.qEnd)
	}
	return p.off(i - 1)
}

// ansEnd is the end of ANSWER, the start of ADDITIONAL.
func (p *packedAnswer) ansEnd() int { return p.off(int(p.an) - 1) }

// extraEnd is the end of ADDITIONAL record i.
func (p *packedAnswer) extraEnd(i int) int { return p.off(int(p.an) + i) }

// end is the end of the records (without OPT).
func (p *packedAnswer) end() int { return int(p.qEnd) + len(p.b) - int(p.recs) }

// fixes is the number of (where, target) pairs.
func (p *packedAnswer) fixes() int { return (int(p.recs)/2 - int(p.an) - int(p.ar)) / 2 }

// rotation picks the rotation of the answers for the counter c.
func (p *packedAnswer) rotation(c uint32) int {
	if !p.rotate {
		return 0
	}
	return int(c % uint32(p.an))
}

// packed returns the packed answer of qtype (which must have a slot) at
// name (lowercase), building it if needed; nil if the name has no such
// records or they cannot be packed.
func (d *nodeData) packed(name []byte, qtype uint16, ttl uint32) *packedAnswer {
	head := d.cache.Load()
	if c := head.find(qtype); c != nil {
		return &c.packedAnswer
	}
	c := packAnswer(string(name), qtype, d.recs, ttl)
	if c == nil {
		return nil
	}
	for {
		c.next = head
		if d.cache.CompareAndSwap(head, c) {
			return &c.packedAnswer
		}
		// Another query added an answer: maybe this one, packed the same.
		head = d.cache.Load()
		if found := head.find(qtype); found != nil {
			return &found.packedAnswer
		}
	}
}

// find returns the element of the list for qtype, or nil.
func (c *answerCache) find(qtype uint16) *answerCache {
	for ; c != nil; c = c.next {
		if c.qtype == qtype {
			return c
		}
	}
	return nil
}

// maxPointer is the largest offset a compression pointer reaches.
const maxPointer = 0x3FFF

// packAnswer packs the response to a question for name's records of qtype.
//
// miekg/dns would compress a PTR or NS target against an earlier answer's,
// which ties the answers to their order, so the records are packed one by
// one instead, each against a compression map that holds the question's
// names and its own only. ADDITIONAL is packed against all of them, which
// points its owners at the targets in ANSWER, as dns.Msg.Pack would: 100
// SRV records and their targets' addresses fit in 4096 bytes that way.
func packAnswer(name string, qtype uint16, recs []rec, ttl uint32) *answerCache {
	var answer, extra []dns.RR
	for _, r := range recs {
		if r.typ == qtype {
			answer = append(answer, r.rr(name, ttl, nil))
			extra = appendExtra(extra, r, name, ttl)
		}
	}
	if len(answer) == 0 {
		return nil
	}
	size := headerLen + len(name) + 1 + 4 // the uncompressed size bounds the packed one
	for _, rr := range answer {
		size += dns.Len(rr)
	}
	for _, rr := range extra {
		size += dns.Len(rr)
	}
	msg := make([]byte, size) // the whole reply, header left zero
	qnames := map[string]int{}
	off, err := dns.PackDomainName(name, msg, headerLen, qnames, false)
	if err != nil || off+4 > len(msg) {
		return nil
	}
	binary.BigEndian.PutUint16(msg[off:], qtype)
	binary.BigEndian.PutUint16(msg[off+2:], dns.ClassINET)
	qEnd := off + 4

	var table []uint16
	all := maps.Clone(qnames)
	off = qEnd
	for _, rr := range answer {
		own := maps.Clone(qnames)
		if off, err = dns.PackRR(rr, msg, off, own, true); err != nil || off > maxTCPSize {
			return nil
		}
		for name, at := range own {
			if _, ok := all[name]; !ok {
				all[name] = at // the first answer's, as dns.Msg.Pack does
			}
		}
		table = append(table, uint16(off))
	}
	ansEnd := off
	if ansEnd-1 > maxPointer {
		// A pointer into ANSWER could not follow its answer to the end of
		// the section: ADDITIONAL points into the question only.
		all = qnames
	}
	for _, rr := range extra {
		if off, err = dns.PackRR(rr, msg, off, all, true); err != nil || off > maxTCPSize {
			return nil
		}
		table = append(table, uint16(off))
	}
	msg = msg[:off]

	// Check in the bytes what rotation relies on; ADDITIONAL may point
	// into itself, which does not move, and at names in ANSWER: those
	// pointers are noted, to be patched.
	rotate, ok := answersMovable(msg, qEnd, table[:len(answer)])
	if !ok {
		return nil
	}
	ok = recordPointers(msg, ansEnd, len(msg), func(at int) {
		if target := pointerAt(msg, at); target >= qEnd && target < ansEnd {
			table = append(table, uint16(at), uint16(target))
		}
	})
	if !ok {
		return nil
	}
	anyName := len(extra) == 0 && (qtype == dns.TypeA || qtype == dns.TypeAAAA)
	recordPointers(msg, qEnd, len(msg), func(at int) {
		if pointerAt(msg, at) != headerLen {
			anyName = false
		}
	})
	b := make([]byte, 0, 2*len(table)+len(msg)-qEnd)
	for _, v := range table {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return &answerCache{packedAnswer: packedAnswer{
		qtype:   qtype,
		b:       append(b, msg[qEnd:]...),
		recs:    uint16(2 * len(table)),
		qEnd:    uint16(qEnd),
		an:      uint16(len(answer)),
		ar:      uint16(len(extra)),
		rotate:  rotate && len(answer) > 1,
		anyName: anyName,
	}}
}

// answersMovable reports whether the answer records of msg, which start at
// qEnd and end at ends, can be copied in any order: whether every
// compression pointer in them leads into the question. ok is false for
// records recordPointers cannot walk.
func answersMovable(msg []byte, qEnd int, ends []uint16) (movable, ok bool) {
	movable = true
	start := qEnd
	for _, end := range ends {
		ok := recordPointers(msg, start, int(end), func(at int) {
			if pointerAt(msg, at) >= qEnd {
				movable = false
			}
		})
		if !ok {
			return false, false
		}
		start = int(end)
	}
	return movable, true
}

// pointerAt is the target of the compression pointer at msg[at:].
func pointerAt(msg []byte, at int) int {
	return int(binary.BigEndian.Uint16(msg[at:]) & maxPointer)
}

// recordPointers calls f with the offset of every compression pointer in
// the names of the records in msg[start:end]: owners, and the names in the
// data of the types packAnswer packs. It reports false for records it
// cannot walk.
func recordPointers(msg []byte, start, end int, f func(at int)) bool {
	name := func(off int) int {
		for off < end {
			switch l := int(msg[off]); {
			case l == 0:
				return off + 1
			case l&0xC0 == 0xC0:
				if off+2 > end {
					return -1
				}
				f(off)
				return off + 2
			case l&0xC0 != 0:
				return -1
			default:
				off += 1 + l
			}
		}
		return -1
	}
	for off := start; off < end; {
		if off = name(off); off < 0 || off+10 > end {
			return false
		}
		rdata := off + 10
		next := rdata + int(binary.BigEndian.Uint16(msg[off+8:]))
		if next > end {
			return false
		}
		switch binary.BigEndian.Uint16(msg[off:]) {
		case dns.TypeA, dns.TypeAAAA:
		case dns.TypeSRV:
			if name(rdata+6) != next {
				return false
			}
		case dns.TypePTR, dns.TypeNS:
			if name(rdata) != next {
				return false
			}
		default:
			return false
		}
		off = next
	}
	return true
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

// composeAnswer writes the reply to q from a packed answer into out, its
// answers in rotation k (from the k-th on, then those before it), within
// limit bytes. ADDITIONAL records that do not fit are left out (they are
// optional, RFC 2181 §9); if the answers themselves do not fit, the reply is
// the header and question with TC set, and the client retries over TCP.
// q's question must end where p's does (the same name), unless p.anyName.
func composeAnswer(out, pkt []byte, q *query, p *packedAnswer, k int, flags uint16, limit int) []byte {
	// p's offsets are where its records stand after its own question;
	// shift moves them behind q's (zero unless p.anyName).
	shift := q.qEnd - int(p.qEnd)
	limit -= shift
	opt := optLen(q)
	end, ar := p.end(), int(p.ar)
	for ar > 0 && end+opt > limit {
		ar--
		end = p.ansEnd()
		if ar > 0 {
			end = p.extraEnd(ar - 1)
		}
	}
	if end+opt > limit {
		return appendOPT(appendHeader(out, pkt, q, flags|flagTC, 0, 0, uint16(opt/optRRLen)), q)
	}
	out = appendHeader(out, pkt, q, flags, p.an, 0, uint16(ar+opt/optRRLen))
	base := int(p.qEnd) // where recs starts in the reply
	recs := p.b[p.recs:]
	if k == 0 {
		out = append(out, recs[:end-base]...)
		return appendOPT(out, q)
	}
	split, ansEnd := p.ansStart(k), p.ansEnd()
	out = append(out, recs[split-base:ansEnd-base]...)
	out = append(out, recs[:split-base]...)
	out = append(out, recs[ansEnd-base:end-base]...)
	// The answers from the k-th on moved up by split-base, those before
	// it down by ansEnd-split.
	for i := int(p.an+p.ar) * 2; i < int(p.recs); i += 4 {
		at, target := int(binary.BigEndian.Uint16(p.b[i:])), int(binary.BigEndian.Uint16(p.b[i+2:]))
		if at >= end {
			break
		}
		if target >= split {
			target -= split - base
		} else {
			target += ansEnd - split
		}
		binary.BigEndian.PutUint16(out[at+shift:], 0xC000|uint16(target+shift))
	}
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

// packsAlike reports whether the answers to questions for names a and b
// (lowercase FQDNs) from the same records recs pack to the same bytes, so
// that the two names can share their packed answers. Records without names
// in their data (A, AAAA) point at the question's start only: any two names
// (packedAnswer.anyName). Otherwise the names must be as long, and the
// targets compress against the same part of both: no target may share more
// of its end with either name than the names share with each other.
func packsAlike(a, b string, recs []rec) bool {
	addrOnly := true
	for _, r := range recs {
		switch r.typ {
		case dns.TypeA, dns.TypeAAAA:
		case dns.TypeSRV, dns.TypePTR, dns.TypeNS:
			addrOnly = false
		default:
			return false
		}
	}
	if addrOnly {
		return true
	}
	if len(a) != len(b) {
		return false
	}
	common := labelSuffix(a, b)
	for _, r := range recs {
		ta, tb := r.targetFor(a), r.targetFor(b)
		if ta != tb {
			return false // relative targets below different domains
		}
		if ta != "" && (labelSuffix(ta, a) > common || labelSuffix(ta, b) > common) {
			return false
		}
	}
	return true
}

// labelSuffix is the length of the longest run of whole labels that a and
// b both end in.
func labelSuffix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[len(a)-1-n] == b[len(b)-1-n] {
		n++
	}
	boundary := func(s string, i int) bool { return i == 0 || s[i-1] == '.' }
	for n > 0 && !(boundary(a, len(a)-n) && boundary(b, len(b)-n)) {
		n--
	}
	return n
}

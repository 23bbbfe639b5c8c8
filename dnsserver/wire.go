package dnsserver

import "encoding/binary"

// The fast path reads the header and the one question of a query by hand:
// unpacking a dns.Msg costs more than answering from a packed answer. Any
// query it does not fully understand goes to the slow path, which uses
// dns.Msg and decides what is wrong with it.

const (
	headerLen = 12

	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagRA = 1 << 7
	flagCD = 1 << 4

	typeOPT    = 41
	optRRLen   = 11   // an OPT record without options
	maxUDPSize = 4096 // the most we send over UDP, whatever a client offers
	minUDPSize = 512
	maxTCPSize = 65535
)

// query is what the fast path knows of a packet.
type query struct {
	id    uint16
	flags uint16
	// name is the question name, lowercase, in presentation form ("a.b.").
	// It lives in the parser's scratch buffer.
	name          []byte
	qtype, qclass uint16
	qEnd          int // end of the question section in the packet
	edns          bool
	udpSize       uint16 // the client's EDNS0 buffer size
}

// parseResult says what to do with a packet.
type parseResult uint8

const (
	parseFast parseResult = iota // a plain query: q is filled in
	parseSlow                    // valid or not, dns.Msg must look at it
	parseDrop                    // not a query (a response, or shorter than a header)
	parseBad                     // a header, then a question cut short: FORMERR
)

// parseQuery reads pkt into q, writing the name into scratch (at least 256
// bytes). It accepts only what it can answer without dns.Msg: a QUERY with
// one uncompressed question whose labels hold letters, digits, '-' and '_',
// and nothing else but an optional OPT record of version 0.
func parseQuery(pkt []byte, q *query, scratch []byte) parseResult {
	if len(pkt) < headerLen {
		return parseDrop
	}
	q.id = binary.BigEndian.Uint16(pkt)
	q.flags = binary.BigEndian.Uint16(pkt[2:])
	if q.flags&flagQR != 0 {
		return parseDrop // never answer an answer: that is how loops start
	}
	if (q.flags>>11)&0xF != 0 || binary.BigEndian.Uint16(pkt[4:]) != 1 ||
		binary.BigEndian.Uint16(pkt[6:]) != 0 || binary.BigEndian.Uint16(pkt[8:]) != 0 {
		return parseSlow
	}
	arcount := binary.BigEndian.Uint16(pkt[10:])
	if arcount > 1 {
		return parseSlow
	}

	off := headerLen
	name := scratch[:0]
	for {
		if off >= len(pkt) {
			return parseBad
		}
		l := int(pkt[off])
		off++
		if l == 0 {
			break
		}
		if l > maxLabel || len(name)+l+1 > 254 {
			return parseSlow // compression pointers and extended labels included
		}
		if off+l > len(pkt) {
			return parseBad
		}
		for _, c := range pkt[off : off+l] {
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			default:
				return parseSlow // needs escaping: not one of our names
			}
			name = append(name, c)
		}
		name = append(name, '.')
		off += l
	}
	if off+4 > len(pkt) {
		return parseBad
	}
	if len(name) == 0 {
		return parseSlow // the root: not ours
	}
	q.name = name
	q.qtype = binary.BigEndian.Uint16(pkt[off:])
	q.qclass = binary.BigEndian.Uint16(pkt[off+2:])
	off += 4
	q.qEnd = off
	q.edns = false
	q.udpSize = 0

	if arcount == 1 {
		// An OPT record: root owner, then type, class, ttl, rdlength.
		if off+optRRLen > len(pkt) || pkt[off] != 0 || binary.BigEndian.Uint16(pkt[off+1:]) != typeOPT {
			return parseSlow
		}
		if version := pkt[off+6]; version != 0 {
			return parseSlow // BADVERS, from the slow path
		}
		rdlen := int(binary.BigEndian.Uint16(pkt[off+9:]))
		q.edns = true
		q.udpSize = binary.BigEndian.Uint16(pkt[off+3:])
		off += optRRLen + rdlen // options (cookies, NSID, ...) are ignored
	}
	if off != len(pkt) {
		return parseSlow
	}
	return parseFast
}

// udpLimit is the largest reply the client takes over UDP: 512 bytes
// without EDNS0, else what it advertises, within [512, 4096].
func (q *query) udpLimit() int {
	if !q.edns {
		return minUDPSize
	}
	return min(max(int(q.udpSize), minUDPSize), maxUDPSize)
}

// skipName returns the offset after the (possibly compressed) name at off,
// or -1. It only walks messages we packed ourselves.
func skipName(msg []byte, off int) int {
	for off < len(msg) {
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1
		case l&0xC0 == 0xC0:
			return off + 2
		}
		off += 1 + l
	}
	return -1
}

// skipRR returns the offset after the resource record at off, or -1.
func skipRR(msg []byte, off int) int {
	off = skipName(msg, off)
	if off < 0 || off+10 > len(msg) {
		return -1
	}
	return off + 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
}

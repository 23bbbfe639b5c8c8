package dnsserver

import (
	"context"
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// packetWorker answers packets for one socket (or one TCP query). It holds
// the per-socket state of the hot path, so a query allocates nothing:
// the parsed query, the name buffer, the rotation counter and the counts.
type packetWorker struct {
	s       *Server
	q       query
	scratch [256]byte
	rot     uint32
	counts  localCounts
}

func newPacketWorker(s *Server) *packetWorker { return &packetWorker{s: s} }

// serve answers one packet: it returns the reply, written into out (which
// should have room for maxUDPSize bytes; it grows for larger TCP replies),
// or nil when nothing must be sent. A query for a name outside the zone
// that this client may have forwarded comes back as fwd instead: the caller
// forwards it (Server.forward), on its own goroutine for UDP.
func (w *packetWorker) serve(pkt, out []byte, client netip.Addr, tcp bool) (reply []byte, fwd *dns.Msg) {
	switch parseQuery(pkt, &w.q, w.scratch[:]) {
	case parseDrop:
		if len(pkt) < headerLen {
			w.s.metrics.Malformed.Inc()
		}
		return nil, nil
	case parseSlow:
		return w.slow(pkt, out, client, tcp)
	case parseBad:
		w.s.metrics.Malformed.Inc()
		w.counts.add(0, dns.RcodeFormatError)
		return formErr(out, pkt), nil
	}
	q := &w.q
	if q.qclass != dns.ClassINET {
		return w.slow(pkt, out, client, tcp)
	}
	s := w.s
	z := s.zone.Load()
	origin := s.zcfg.origin
	flags := flagQR | q.flags&(flagRD|flagCD) | s.recursionFlag(client)
	limit := q.udpLimit()
	if tcp {
		limit = maxTCPSize
	}

	// Where the zone's origin starts in the question, for the SOA's
	// compression pointers; -1 outside the domain.
	apexOff := -1
	if n := len(q.name) - len(origin); n == 0 || n > 0 && q.name[n-1] == '.' {
		if string(q.name[n:]) == origin {
			apexOff = headerLen + n
		}
	}
	if apexOff < 0 {
		// Only the reverse names the zone holds are answered here.
		if z == nil || !isReverseBytes(q.name) {
			return w.slow(pkt, out, client, tcp)
		}
		if _, ok := z.names.getBytes(q.name); !ok {
			return w.slow(pkt, out, client, tcp)
		}
	}
	if z == nil {
		w.counts.add(q.qtype, dns.RcodeServerFailure)
		return composeNoAnswer(out, pkt, q, nil, flags|dns.RcodeServerFailure, -1, false), nil
	}

	flags |= flagAA
	n, ok := z.names.getBytes(q.name)
	c := z.canonLookup(q.name, nil)
	switch {
	case c.tasks > 1 || c.tasks == 1 && n.data != nil,
		c.tasks == 1 && (q.qtype == dns.TypeANY || q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR):
		// A canonical name that other records share (Lookup unions
		// them), or a question the slow path answers.
		return w.slow(pkt, out, client, tcp)
	case c.tasks == 1:
		return w.canonAnswer(out, pkt, q, z, c, flags, apexOff)
	case !ok && c.exists:
		w.counts.add(q.qtype, dns.RcodeSuccess)
		return composeNoAnswer(out, pkt, q, z, flags, apexOff, false), nil
	case !ok:
		w.counts.add(q.qtype, dns.RcodeNameError)
		return composeNoAnswer(out, pkt, q, z, flags|dns.RcodeNameError, apexOff, false), nil
	}
	switch {
	case q.qtype == dns.TypeSOA && n.data.has(dns.TypeSOA):
		w.counts.add(q.qtype, dns.RcodeSuccess)
		return composeNoAnswer(out, pkt, q, z, flags, apexOff, true), nil
	case slotOf(q.qtype) >= 0 && n.data.has(q.qtype):
		p := n.data.packed(q.name, q.qtype, z.cfg.ttl)
		if p == nil || !p.anyName && int(p.qEnd) != q.qEnd {
			// Cannot be packed: the slow path will say why. (A question
			// for the name always has the length of the packed one.)
			break
		}
		k := p.rotation(w.rot)
		w.rot++
		w.counts.add(q.qtype, dns.RcodeSuccess)
		return composeAnswer(out, pkt, q, p, k, flags, limit), nil
	case !n.data.has(q.qtype) && q.qtype != dns.TypeAXFR && q.qtype != dns.TypeIXFR:
		w.counts.add(q.qtype, dns.RcodeSuccess)
		return composeNoAnswer(out, pkt, q, z, flags, apexOff, false), nil
	}
	return w.slow(pkt, out, client, tcp)
}

// canonAnswer answers a question for one task's canonical name (canon.go):
// its one address of the type asked for, or NODATA.
func (w *packetWorker) canonAnswer(out, pkt []byte, q *query, z *Zone, c canonResult, flags uint16, apexOff int) ([]byte, *dns.Msg) {
	w.counts.add(q.qtype, dns.RcodeSuccess)
	if ip := c.task.addr(c.slave, q.qtype); ip != nil {
		return composeAddr(out, pkt, q, flags, z.cfg.ttl, ip), nil
	}
	return composeNoAnswer(out, pkt, q, z, flags, apexOff, false), nil
}

// isReverseBytes is isReverseName without turning name into a string (the
// compiler does not copy for a comparison).
func isReverseBytes(name []byte) bool {
	const v4, v6 = ".in-addr.arpa.", ".ip6.arpa."
	return len(name) > len(v4) && string(name[len(name)-len(v4):]) == v4 ||
		len(name) > len(v6) && string(name[len(name)-len(v6):]) == v6
}

// recursionFlag is RA for a client whose outside names we forward.
func (s *Server) recursionFlag(client netip.Addr) uint16 {
	if s.fwd != nil && AllowedRecursion(s.cfg.RecursionCIDRs, client) {
		return flagRA
	}
	return 0
}

// slow answers what the fast path does not: through dns.Msg, which finds
// what is wrong with a malformed query, and the zone's Lookup.
func (w *packetWorker) slow(pkt, out []byte, client netip.Addr, tcp bool) ([]byte, *dns.Msg) {
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		w.s.metrics.Malformed.Inc()
		if len(pkt) < headerLen || pkt[2]&0x80 != 0 {
			return nil, nil
		}
		w.counts.add(0, dns.RcodeFormatError)
		return formErr(out, pkt), nil
	}
	if req.Response {
		return nil, nil
	}
	reply, fwd := w.s.answerMsg(req, client, &w.rot)
	if fwd {
		return nil, req
	}
	return w.s.packReply(req, reply, out, tcp, &w.counts), nil
}

// formErr is FORMERR for a packet whose header is all we can read: the ID
// and opcode echoed, no sections.
func formErr(out, pkt []byte) []byte {
	out = append(out[:0], pkt[:4]...)
	flags := binary.BigEndian.Uint16(pkt[2:])
	flags = flagQR | flags&(0xF<<11|flagRD) | dns.RcodeFormatError
	binary.BigEndian.PutUint16(out[2:], flags)
	return append(out, 0, 0, 0, 0, 0, 0, 0, 0)
}

// answerMsg answers req from the zone, or reports that it must be
// forwarded.
func (s *Server) answerMsg(req *dns.Msg, client netip.Addr, rot *uint32) (reply *dns.Msg, forward bool) {
	reply = new(dns.Msg)
	reply.SetReply(req)
	reply.RecursionAvailable = s.recursionFlag(client) != 0
	opt := req.IsEdns0()
	if opt != nil {
		reply.SetEdns0(maxUDPSize, false)
	}
	switch {
	case req.Opcode != dns.OpcodeQuery:
		reply.Rcode = dns.RcodeNotImplemented
		return reply, false
	case len(req.Question) != 1:
		reply.Rcode = dns.RcodeFormatError
		return reply, false
	case opt != nil && opt.Version() != 0:
		reply.Rcode = dns.RcodeBadVers
		return reply, false
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	z := s.zone.Load()
	inDomain := isSubdomain(name, s.zcfg.origin)
	if !inDomain && (z == nil || !z.InZone(name)) {
		if s.fwd == nil || !AllowedRecursion(s.cfg.RecursionCIDRs, client) {
			reply.Rcode = dns.RcodeRefused
			return reply, false
		}
		return nil, true
	}
	switch {
	case z == nil:
		reply.Rcode = dns.RcodeServerFailure
		return reply, false
	case q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY,
		q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		// Zone transfers are on the HTTP API (/v1/axfr).
		reply.Rcode = dns.RcodeRefused
		return reply, false
	}
	reply.Authoritative = true
	res := z.Lookup(name, q.Qtype)
	switch {
	case !res.Exists:
		reply.Rcode = dns.RcodeNameError
	case len(res.Answer) == 0:
	default:
		// Keep the question's letter case in the answers, and rotate.
		k := 0
		if n := len(res.Answer); n > 1 {
			k = int(*rot % uint32(n))
			*rot++
		}
		for i := range res.Answer {
			rr := res.Answer[(i+k)%len(res.Answer)]
			rr.Header().Name = q.Name
			reply.Answer = append(reply.Answer, rr)
		}
		reply.Extra = append(res.Extra, reply.Extra...) // OPT last
		return reply, false
	}
	if inDomain {
		reply.Ns = []dns.RR{z.SOA()}
	}
	return reply, false
}

// packReply packs reply into out, cut to what the client takes over UDP,
// and counts it.
func (s *Server) packReply(req, reply *dns.Msg, out []byte, tcp bool, counts *localCounts) []byte {
	limit := maxTCPSize
	if !tcp {
		limit = msgUDPLimit(req)
	}
	reply.Compress = true
	if reply.Len() > limit {
		reply.Truncate(limit)
	}
	b, err := reply.PackBuffer(out[:cap(out)])
	if err != nil {
		// Only our own mistakes end here: say so rather than go silent.
		s.log.Warn("dns reply does not pack", "err", err, "question", req.Question)
		fail := new(dns.Msg)
		fail.SetRcode(req, dns.RcodeServerFailure)
		if b, err = fail.PackBuffer(out[:cap(out)]); err != nil {
			return nil
		}
		reply = fail
	}
	var qtype uint16
	if len(req.Question) > 0 {
		qtype = req.Question[0].Qtype
	}
	counts.add(qtype, reply.Rcode)
	return b
}

// msgUDPLimit is udpLimit for a dns.Msg.
func msgUDPLimit(req *dns.Msg) int {
	if opt := req.IsEdns0(); opt != nil {
		return min(max(int(opt.UDPSize()), minUDPSize), maxUDPSize)
	}
	return minUDPSize
}

// forward answers req through the upstream resolvers and packs the reply
// into out. An upstream failure is SERVFAIL; a server shutting down sends
// nothing.
func (s *Server) forward(ctx context.Context, req *dns.Msg, out []byte, tcp bool, counts *localCounts) []byte {
	resp, err := s.fwd.Forward(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		s.log.Debug("forwarding failed", "err", err)
		resp = new(dns.Msg)
		resp.SetRcode(req, dns.RcodeServerFailure)
		if req.IsEdns0() != nil {
			resp.SetEdns0(maxUDPSize, false)
		}
	}
	resp.RecursionAvailable = true
	return s.packReply(req, resp, out, tcp, counts)
}

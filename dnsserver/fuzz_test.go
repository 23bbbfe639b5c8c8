package dnsserver

import (
	"encoding/binary"
	"testing"

	"github.com/miekg/dns"
)

// FuzzServePacket feeds the packet handler anything: it must not panic or
// hang, and whatever it sends must be a DNS message that unpacks, with the
// query's ID, within the UDP limit. The seeds run in every `go test`.
func FuzzServePacket(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  uint16
	}{
		{"app01.group.marathon.mesos.", dns.TypeA, 0},
		{"_big._tcp.marathon.mesos.", dns.TypeSRV, 0},
		{"_big._tcp.marathon.mesos.", dns.TypeSRV, 4096},
		{"_app01.group._udp.marathon.mesos.", dns.TypeSRV, 1232},
		{"NoPe.MeSoS.", dns.TypeAAAA, 512},
		{"mesos.", dns.TypeSOA, 0},
		{"mesos.", dns.TypeANY, 0},
		{"1.0.0.10.in-addr.arpa.", dns.TypePTR, 0},
		{"example.com.", dns.TypeA, 0},
		{".", dns.TypeNS, 0},
	} {
		f.Add(packQuery(f, q.name, q.qtype, q.edns))
	}
	a := packQuery(f, "leader.mesos.", dns.TypeA, 0)
	f.Add([]byte{})
	f.Add(a[:5])
	f.Add(a[:12])
	f.Add(a[:len(a)-1])
	f.Add(append(append([]byte(nil), a...), 0, 0, 0))
	// A compression loop in the question, and a pointer past the end.
	f.Add(append(append([]byte(nil), a[:12]...), 0xC0, 12, 0, 1, 0, 1))
	f.Add(append(append([]byte(nil), a[:12]...), 0xC0, 0xFF, 0, 1, 0, 1))
	// Two questions; an OPT with a bogus length; a response; a NOTIFY.
	two := append([]byte(nil), a...)
	binary.BigEndian.PutUint16(two[4:], 2)
	f.Add(two)
	opt := packQuery(f, "leader.mesos.", dns.TypeA, 1232)
	binary.BigEndian.PutUint16(opt[len(opt)-2:], 200)
	f.Add(opt)
	resp := append([]byte(nil), a...)
	resp[2] |= 0x80
	f.Add(resp)
	notify := append([]byte(nil), a...)
	notify[2] = 4 << 3
	f.Add(notify)

	s := fixture(f)
	bigApp(f, s, 100)
	srv, _ := testServer(f, s)
	w := newPacketWorker(srv)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		for _, tcp := range []bool{false, true} {
			reply, fwd := w.serve(pkt, make([]byte, 0, maxUDPSize), loopback, tcp)
			if fwd != nil {
				reply = srv.forward(t.Context(), fwd, make([]byte, 0, maxUDPSize), tcp, &w.counts)
			}
			if reply == nil {
				continue
			}
			m := new(dns.Msg)
			if err := m.Unpack(reply); err != nil {
				t.Fatalf("tcp=%v: reply does not unpack: %v\n% x", tcp, err, reply)
			}
			if m.Id != binary.BigEndian.Uint16(pkt) || !m.Response {
				t.Fatalf("tcp=%v: reply id %#x response %v for % x", tcp, m.Id, m.Response, pkt[:2])
			}
			if !tcp && len(reply) > maxUDPSize {
				t.Fatalf("UDP reply of %d bytes", len(reply))
			}
		}
	})
}

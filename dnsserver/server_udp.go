package dnsserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// UDP serving: each SO_REUSEPORT socket has its own goroutine, which reads
// up to udpBatch queries with one recvmmsg, answers them, and sends the
// replies with one sendmmsg. Forwarded queries leave the batch and are
// answered from their own goroutine when the upstream replies.

const (
	udpBatch = 64
	// udpReadSize is the largest query read whole; a longer one is cut
	// by the kernel and answered FORMERR.
	udpReadSize = maxUDPSize
	// oobSize holds an IP_PKTINFO or IPV6_PKTINFO control message.
	oobSize = 64
)

// batchConn is ipv4.PacketConn or ipv6.PacketConn: their Message types are
// the same type.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

type udpWorker struct {
	s    *Server
	conn *net.UDPConn
	pc   batchConn
	// pktinfo: the socket listens on every address, so each reply must
	// leave from the address its query came to; the kernel tells which in
	// a control message, and takes the same message back on send.
	pktinfo bool

	in, out  []ipv4.Message
	outBufs  [][]byte
	pw       *packetWorker
	forwards sync.WaitGroup
}

func newUDPWorker(s *Server, c *net.UDPConn) (*udpWorker, error) {
	w := &udpWorker{s: s, conn: c, pw: newPacketWorker(s)}
	la := c.LocalAddr().(*net.UDPAddr)
	if la.IP.To4() != nil {
		p := ipv4.NewPacketConn(c)
		if la.IP.IsUnspecified() {
			if err := p.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
				return nil, fmt.Errorf("udp %s: IP_PKTINFO: %w", la, err)
			}
			w.pktinfo = true
		}
		w.pc = p
	} else {
		p := ipv6.NewPacketConn(c)
		if la.IP.IsUnspecified() {
			if err := p.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
				return nil, fmt.Errorf("udp %s: IPV6_RECVPKTINFO: %w", la, err)
			}
			w.pktinfo = true
		}
		w.pc = p
	}
	w.in = make([]ipv4.Message, udpBatch)
	w.out = make([]ipv4.Message, udpBatch)
	w.outBufs = make([][]byte, udpBatch)
	for i := range udpBatch {
		w.in[i].Buffers = [][]byte{make([]byte, udpReadSize)}
		w.out[i].Buffers = make([][]byte, 1)
		w.outBufs[i] = make([]byte, 0, maxUDPSize+512)
		if w.pktinfo {
			w.in[i].OOB = make([]byte, oobSize)
		}
	}
	return w, nil
}

// run serves until the socket is closed (Run closes it when ctx ends), and
// waits for its forwarded queries.
func (w *udpWorker) run(ctx context.Context) error {
	defer w.forwards.Wait()
	for {
		n, err := w.pc.ReadBatch(w.in, 0)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if transientUDPError(err) {
				continue
			}
			return fmt.Errorf("udp %s: read: %w", w.conn.LocalAddr(), err)
		}
		k := 0
		for i := range n {
			m := &w.in[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			pkt := m.Buffers[0][:m.N]
			var reply []byte
			var fwd *dns.Msg
			if m.Flags&unix.MSG_TRUNC != 0 && len(pkt) >= headerLen {
				w.s.metrics.Malformed.Inc()
				reply = formErr(w.outBufs[k][:0], pkt)
			} else {
				reply, fwd = w.pw.serve(pkt, w.outBufs[k][:0], ua.AddrPort().Addr(), false)
			}
			var oob []byte
			if w.pktinfo {
				oob = m.OOB[:m.NN]
			}
			if fwd != nil {
				w.forwardAsync(ctx, fwd, ua, oob)
				continue
			}
			if reply == nil {
				continue
			}
			o := &w.out[k]
			o.Buffers[0] = reply
			o.Addr = ua
			o.OOB = oob
			k++
		}
		w.pw.counts.flush(w.s.counts)
		if err := w.write(w.out[:k]); err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

// write sends a batch. A reply the kernel refuses (an unreachable client,
// a firewall) is skipped; the others still go.
func (w *udpWorker) write(ms []ipv4.Message) error {
	for len(ms) > 0 {
		n, err := w.pc.WriteBatch(ms, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			n++ // skip the message that failed
		}
		ms = ms[min(n, len(ms)):]
	}
	return nil
}

// forwardAsync forwards req on a goroutine of its own and sends the reply
// from this socket. When too many are in flight the client gets SERVFAIL
// at once: better than a queue that grows while upstreams are down.
func (w *udpWorker) forwardAsync(ctx context.Context, req *dns.Msg, to *net.UDPAddr, oob []byte) {
	oob = bytes.Clone(oob) // the batch buffers are reused
	select {
	case w.s.slowSem <- struct{}{}:
	default:
		fail := new(dns.Msg)
		fail.SetRcode(req, dns.RcodeServerFailure)
		var counts localCounts
		if b := w.s.packReply(req, fail, make([]byte, 0, 512), false, &counts); b != nil {
			_, _, _ = w.conn.WriteMsgUDP(b, oob, to)
		}
		counts.flush(w.s.counts)
		return
	}
	w.forwards.Go(func() {
		defer func() { <-w.s.slowSem }()
		var counts localCounts
		b := w.s.forward(ctx, req, make([]byte, 0, 512), false, &counts)
		counts.flush(w.s.counts)
		if b != nil {
			// The socket may be closed by now: then nobody waits for this.
			_, _, _ = w.conn.WriteMsgUDP(b, oob, to)
		}
	})
}

// transientUDPError is an error a UDP socket recovers from: ICMP errors of
// earlier sends reported on read, interrupted calls, short buffers.
func transientUDPError(err error) bool {
	for _, e := range []error{syscall.ECONNREFUSED, syscall.EINTR, syscall.EAGAIN, syscall.ENOBUFS, syscall.ENOMEM, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// clientAddr is the address of a UDP peer, for the recursion ACL.
func clientAddr(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.UDPAddr:
		return v.AddrPort().Addr()
	case *net.TCPAddr:
		return v.AddrPort().Addr()
	}
	return netip.Addr{}
}

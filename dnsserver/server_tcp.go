package dnsserver

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// TCP is served by miekg/dns's server: TCP carries the few queries whose
// answers do not fit UDP, so framing and connection handling matter more
// there than speed. Answers come from the same code and packed answers as
// over UDP, without the UDP size limit.

const (
	tcpReadTimeout = 5 * time.Second
	tcpIdleTimeout = 10 * time.Second
	// tcpShutdownGrace is how long in-flight TCP queries get at shutdown.
	tcpShutdownGrace = 2 * time.Second
)

func (s *Server) serveTCP(ctx context.Context, ln net.Listener) error {
	defer ln.Close() // the dns.Server closes it too, unless it failed to start
	workers := sync.Pool{New: func() any { return newPacketWorker(s) }}
	started := make(chan struct{})
	srv := &dns.Server{
		Listener:          ln,
		Net:               "tcp",
		ReadTimeout:       tcpReadTimeout,
		IdleTimeout:       func() time.Duration { return tcpIdleTimeout },
		NotifyStartedFunc: func() { close(started) },
		MsgInvalidFunc:    func([]byte, error) { s.metrics.Malformed.Inc() },
		Handler: dns.HandlerFunc(func(rw dns.ResponseWriter, req *dns.Msg) {
			w := workers.Get().(*packetWorker)
			defer workers.Put(w)
			s.answerTCP(ctx, w, rw, req)
		}),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-errc:
		return fmt.Errorf("tcp %s: %w", ln.Addr(), err)
	}
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), tcpShutdownGrace)
		defer cancel()
		if err := srv.ShutdownContext(sctx); err != nil {
			s.log.Warn("dns tcp shutdown", "err", err)
		}
		<-errc
		return nil
	case err := <-errc:
		return fmt.Errorf("tcp %s: %w", ln.Addr(), err)
	}
}

// answerTCP packs the query back to wire form (miekg has unpacked it) and
// answers it like a UDP packet, with TCP's size limit.
func (s *Server) answerTCP(ctx context.Context, w *packetWorker, rw dns.ResponseWriter, req *dns.Msg) {
	defer w.counts.flush(s.counts)
	client := clientAddr(rw.RemoteAddr())
	out := make([]byte, 0, maxUDPSize)
	var reply []byte
	if pkt, err := req.Pack(); err != nil {
		fail := new(dns.Msg)
		fail.SetRcodeFormatError(req)
		reply = s.packReply(req, fail, out, true, &w.counts)
	} else {
		var fwd *dns.Msg
		reply, fwd = w.serve(pkt, out, client, true)
		if fwd != nil {
			reply = s.forward(ctx, fwd, out, true, &w.counts)
		}
	}
	if reply != nil {
		_, _ = rw.Write(reply) // a failed write means the client went away
	}
}

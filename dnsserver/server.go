package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/miekg/dns"
)

// forwarder is what the server needs of a Forwarder; tests stub it.
type forwarder interface {
	Forward(ctx context.Context, req *dns.Msg) (*dns.Msg, error)
}

// Server answers DNS over UDP and TCP: the cluster's names from the current
// zone, other names through the forwarder.
//
// Before the first snapshot arrives there is no zone and names in the
// domain get SERVFAIL (never NXDOMAIN, which clients would cache), while
// forwarding already works.
type Server struct {
	cfg     Config
	zcfg    *zoneConfig // the domain, before any zone exists
	fwd     forwarder   // nil: every outside name is refused
	metrics *Metrics
	counts  *queryCounters
	log     *slog.Logger

	zone atomic.Pointer[Zone]
	rot  atomic.Uint32 // answer rotation for the TCP and slow paths

	// slowSem bounds the queries waiting on upstream resolvers.
	slowSem chan struct{}

	started          atomic.Bool
	ready            chan struct{}
	udpAddr, tcpAddr net.Addr
}

// maxForwarding bounds concurrent forwarded UDP queries: past it, clients
// get SERVFAIL rather than the server growing without bound.
const maxForwarding = 1024

// NewServer makes a server for cfg. fwd may be nil (no forwarding), metrics
// nil (a private set), log nil (slog's default).
func NewServer(cfg Config, fwd *Forwarder, metrics *Metrics, log *slog.Logger) (*Server, error) {
	cfg = cfg.withDefaults()
	if _, ok := dns.IsDomainName(cfg.Domain); !ok {
		return nil, fmt.Errorf("dns server: invalid domain %q", cfg.Domain)
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("dns server: address %q: %w", cfg.Addr, err)
	}
	if cfg.UDPSockets <= 0 {
		cfg.UDPSockets = runtime.GOMAXPROCS(0)
	}
	if metrics == nil {
		metrics = NewMetrics()
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		cfg:     cfg,
		zcfg:    newZoneConfig(cfg),
		metrics: metrics,
		counts:  newQueryCounters(metrics),
		log:     log,
		slowSem: make(chan struct{}, maxForwarding),
		ready:   make(chan struct{}),
	}
	if fwd != nil { // a nil *Forwarder must not become a non-nil interface
		s.fwd = fwd
	}
	return s, nil
}

// Zone is the zone being served, nil before the first snapshot.
func (s *Server) Zone() *Zone { return s.zone.Load() }

// Handler is the events handler that keeps the zone: a snapshot builds a
// new zone, an event makes the next one. Both swap it in atomically.
func (s *Server) Handler() events.Handler { return zoneHandler{s} }

type zoneHandler struct{ s *Server }

func (h zoneHandler) Reset(st *events.State) {
	start := time.Now()
	h.s.zone.Store(BuildZone(st, h.s.cfg))
	h.s.metrics.ZoneUpdateSeconds.Observe(time.Since(start).Seconds())
}

func (h zoneHandler) Applied(st *events.State, e events.Event) {
	start := time.Now()
	z := h.s.zone.Load()
	if z == nil {
		z = BuildZone(st, h.s.cfg) // cannot happen with a Follower: Reset comes first
	} else {
		z = z.Apply(st, e)
	}
	h.s.zone.Store(z)
	h.s.metrics.ZoneUpdateSeconds.Observe(time.Since(start).Seconds())
	h.s.metrics.EventsApplied.Inc()
}

// Ready is closed once Run listens on UDP and TCP.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// UDPAddr is the UDP address served, nil before Ready.
func (s *Server) UDPAddr() net.Addr {
	select {
	case <-s.ready:
		return s.udpAddr
	default:
		return nil
	}
}

// TCPAddr is the TCP address served, nil before Ready. Its port is UDP's.
func (s *Server) TCPAddr() net.Addr {
	select {
	case <-s.ready:
		return s.tcpAddr
	default:
		return nil
	}
}

// Run serves until ctx ends, then closes every socket and waits for every
// goroutine it started. It returns an error if it cannot listen, or if a
// socket fails while serving.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("dns server: Run called twice")
	}
	udp, tcp, err := listen(ctx, s.cfg.Addr, s.cfg.UDPSockets)
	if err != nil {
		return fmt.Errorf("dns server: %w", err)
	}
	s.udpAddr, s.tcpAddr = udp[0].LocalAddr(), tcp.Addr()
	close(s.ready)
	s.log.Info("dns server listening", "udp", s.udpAddr, "tcp", s.tcpAddr, "udp-sockets", len(udp), "domain", s.zcfg.origin)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(udp)+1)
	for _, c := range udp {
		w, err := newUDPWorker(s, c)
		if err != nil {
			cancel()
			errs <- err
			break
		}
		wg.Go(func() {
			if err := w.run(ctx); err != nil {
				errs <- err
				cancel()
			}
		})
	}
	wg.Go(func() {
		if err := s.serveTCP(ctx, tcp); err != nil {
			errs <- err
			cancel()
		}
	})

	<-ctx.Done()
	for _, c := range udp {
		c.Close() // unblocks the readers
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}

package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/atollhq/atoll/events"
)

// SidecarConfig is what one DNS sidecar runs with: the server's Config,
// where the cluster's events come from, and the HTTP API's address.
type SidecarConfig struct {
	DNS Config
	// Source is the leader's event stream and snapshots (a
	// natsbus.Source outside tests): the sidecar runs a follower of its
	// own on it.
	Source events.Source
	// Follower, instead of Source, is a follower run by the caller,
	// shared with a process's other half (the load balancer) through an
	// events.Fanout that includes Handler(): the sidecar reads its
	// metrics but does not run it.
	Follower *events.Follower
	// HTTPAddr is where the Mesos-DNS HTTP API and /metrics listen;
	// "" serves no HTTP at all.
	HTTPAddr string
	// Profiling serves /debug/pprof/ on the HTTP API too (off unless
	// asked: the API has no credentials).
	Profiling bool
	// Version is reported by /v1/version.
	Version string
	// SyncTimeout is the follower's; zero takes its default.
	SyncTimeout time.Duration
	Log         *slog.Logger
}

// Sidecar wires what a DNS node runs into one unit: a follower of the
// cluster's events feeding the server's zone (its own, or one it shares),
// the DNS server with its forwarder, and the HTTP API. `atoll sidecar`,
// `atoll dns` and `atoll dev` all run this, so the three cannot drift
// apart.
type Sidecar struct {
	cfg          SidecarConfig
	log          *slog.Logger
	metrics      *Metrics
	server       *Server
	handler      *changeClock
	follower     *events.Follower
	ownsFollower bool         // Run runs it: it was made from Source
	httpLn       net.Listener // nil when HTTPAddr is ""
}

// NewSidecar binds the HTTP listener and builds the server, so that a
// taken port is reported before anything runs. Run must follow: it owns
// the listener from then on.
func NewSidecar(cfg SidecarConfig) (*Sidecar, error) {
	if (cfg.Source == nil) == (cfg.Follower == nil) {
		return nil, errors.New("dns sidecar: give an event source or a shared follower, one of the two")
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	var httpLn net.Listener
	if cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return nil, fmt.Errorf("dns sidecar: HTTP API: %w", err)
		}
		httpLn = ln
	}
	metrics := NewMetrics()
	fwd := NewForwarder(cfg.DNS.Resolvers, cfg.DNS.ForwardTimeout, metrics)
	srv, err := NewServer(cfg.DNS, fwd, metrics, log)
	if err != nil {
		if httpLn != nil {
			httpLn.Close()
		}
		return nil, fmt.Errorf("dns sidecar: %w", err)
	}
	clock := newChangeClock(srv.Handler(), time.Now)
	s := &Sidecar{
		cfg: cfg, log: log, metrics: metrics, server: srv, handler: clock, httpLn: httpLn,
		follower: cfg.Follower,
	}
	if cfg.Source != nil {
		s.ownsFollower = true
		s.follower = &events.Follower{
			Source: cfg.Source, Handler: clock, SyncTimeout: cfg.SyncTimeout,
			Log: log.With("part", "follower"),
		}
	}
	registerFollowerMetrics(metrics, s.follower, clock, srv)
	return s, nil
}

// Ready is closed once the DNS server serves (UDP and TCP bound).
func (s *Sidecar) Ready() <-chan struct{} { return s.server.Ready() }

// DNSAddr is the server's UDP address; valid after Ready.
func (s *Sidecar) DNSAddr() net.Addr { return s.server.UDPAddr() }

// HTTPAddr is the HTTP API's address, nil when it is off.
func (s *Sidecar) HTTPAddr() net.Addr {
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}

// Follower is the sidecar's follower, for its Synced and Resyncs.
func (s *Sidecar) Follower() *events.Follower { return s.follower }

// Handler is what keeps the zone: a shared follower must feed it (see
// SidecarConfig.Follower). A sidecar with its own follower feeds it
// already.
func (s *Sidecar) Handler() events.Handler { return s.handler }

// Run serves until ctx ends or one part fails; either way every part is
// stopped before Run returns. The first failure is the error. A shared
// follower is its owner's to run.
func (s *Sidecar) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	// Any part that returns while ctx is live has failed: the sidecar
	// without one of its parts would answer wrongly or not at all, so the
	// others stop too and the process supervisor restarts the whole.
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := f(ctx)
			if ctx.Err() == nil {
				if err == nil {
					err = fmt.Errorf("%s stopped unexpectedly", name)
				}
				// The parts' errors say which part they come from.
				once.Do(func() { firstErr = fmt.Errorf("dns sidecar: %w", err) })
			}
			cancel()
		}()
	}
	run("dns server", s.server.Run)
	if s.ownsFollower {
		run("follower", s.follower.Run)
	}
	if s.httpLn != nil {
		run("HTTP API", s.serveHTTP)
	}
	wg.Wait()
	return firstErr
}

// serveHTTP serves the API on the listener bound by NewSidecar until ctx
// ends, then lets requests in flight finish for a moment.
func (s *Sidecar) serveHTTP(ctx context.Context) error {
	h := NewHTTPHandler(s.cfg.DNS, s.server.Zone, s.metrics, s.cfg.Version)
	if s.cfg.Profiling {
		h = withProfiling(h)
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(s.httpLn) }()
	select {
	case err := <-done:
		return fmt.Errorf("HTTP API: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	<-done
	return nil
}

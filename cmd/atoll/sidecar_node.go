package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/dnsserver"
	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/natsbus"
	"github.com/atollhq/atoll/internal/natsauth"
)

// sidecarParts is what one sidecar process runs beside a node's agent:
// the DNS server, the load balancer, or both (`atoll dns`, `atoll lb`,
// `atoll sidecar`, `atoll dev`).
type sidecarParts struct {
	dns     *dnsserver.Config // nil: no DNS server
	dnsHTTP string            // its HTTP API; "" none
	pprof   bool              // /debug/pprof/ on that API too
	lb      *lbOptions        // nil: no load balancer
}

// connName is the process's name on its NATS connection.
func (p sidecarParts) connName() string {
	switch {
	case p.dns != nil && p.lb != nil:
		return "atoll-sidecar"
	case p.lb != nil:
		return "atoll-lb"
	default:
		return "atoll-dns"
	}
}

// nodeSidecar is a sidecar process on one NATS connection with one
// follower, whose events and snapshots feed every half it runs through an
// events.Fanout: a node holds one copy of the cluster's state and asks the
// leader for one snapshot per resync, whatever it runs. DNS hears each
// change first: its update is cheap and its answers should move at once;
// the load balancer renders after it, once per burst.
type nodeSidecar struct {
	follower *events.Follower
	dns      *dnsserver.Sidecar // nil without DNS
	lb       *lbPart            // nil without the load balancer
}

// newNodeSidecar builds the halves p asks for on nc, binding the DNS
// server's HTTP port so that a taken one is reported before anything runs.
// run must follow.
func newNodeSidecar(nf natsFlags, nc *nats.Conn, p sidecarParts, log *slog.Logger) (*nodeSidecar, error) {
	if p.dns == nil && p.lb == nil {
		return nil, errors.New("sidecar: neither DNS nor a load balancer to run")
	}
	src := &natsbus.Source{NC: nc, Subjects: nf.subjects(), OnBadEvent: func(err error) {
		log.Warn("undecodable event ignored", "err", err)
	}}
	s := &nodeSidecar{follower: &events.Follower{Source: src, Log: log.With("component", "follower")}}
	// The load balancer first: it binds nothing until it runs, so a
	// DNS half that cannot bind its port leaves nothing behind.
	if p.lb != nil {
		if nf.identity == nil {
			return nil, errors.New("sidecar: the load balancer's reports need the credential's name: connect first")
		}
		lb, err := newLBPart(*p.lb, log.With("component", "lb"))
		if err != nil {
			return nil, err
		}
		lb.syncer.SetReporter(natsReporter(nc, nf.subjects(), nf.identity.Name, lb.log))
		s.lb = lb
	}
	var fan events.Fanout
	if p.dns != nil {
		sc, err := dnsserver.NewSidecar(dnsserver.SidecarConfig{
			DNS: *p.dns, Follower: s.follower, HTTPAddr: p.dnsHTTP, Profiling: p.pprof, Version: version, Log: log.With("component", "dns"),
		})
		if err != nil {
			if s.lb != nil {
				s.lb.close()
			}
			return nil, err
		}
		s.dns = sc
		fan = append(fan, sc.Handler())
	}
	if s.lb != nil {
		fan = append(fan, s.lb.syncer)
	}
	s.follower.Handler = fan
	return s, nil
}

// run runs the follower and every half until ctx ends or one of them
// fails; either way all are stopped before it returns. A half gone stops
// the others: a node must not serve DNS from a state its load balancer
// stopped following, or the reverse; the supervisor restarts the whole.
func (s *nodeSidecar) run(ctx context.Context) error {
	parts := map[string]func(context.Context) error{"follower": s.follower.Run}
	if s.dns != nil {
		parts["dns"] = s.dns.Run
	}
	if s.lb != nil {
		parts["load balancer"] = s.lb.run
	}
	return runParts(ctx, parts)
}

// serveNodeSidecar connects to NATS and runs the halves p asks for on one
// follower until ctx ends.
func serveNodeSidecar(ctx context.Context, nf natsFlags, p sidecarParts, log *slog.Logger) error {
	if p.lb != nil {
		if err := checkLBNode(&nf, *p.lb); err != nil {
			return err
		}
	}
	ctx, nc, err := nf.dial(ctx, p.connName(), natsauth.RoleSidecar, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	s, err := newNodeSidecar(nf, nc, p, log)
	if err != nil {
		return err
	}
	args := []any{"nats", redact(nf.url)}
	if p.dns != nil {
		args = append(args, "dns", p.dns.Addr, "http", p.dnsHTTP, "domain", p.dns.Domain, "resolvers", p.dns.Resolvers)
	}
	if p.lb != nil {
		args = append(args, "haproxy-config", s.lb.path)
	}
	log.Info("sidecar following the cluster over NATS", args...)
	return natsCause(ctx, s.run(ctx))
}

// runParts runs each part until ctx ends or one returns: a part that
// returns while ctx is live has failed (nil or not), and the others are
// stopped. It returns once every part has, with the first failure.
func runParts(ctx context.Context, parts map[string]func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	names := make([]string, 0, len(parts))
	for name := range parts {
		names = append(names, name)
	}
	sort.Strings(names)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for _, name := range names {
		run := parts[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := run(ctx)
			if ctx.Err() == nil {
				if err == nil {
					err = fmt.Errorf("%s stopped unexpectedly", name)
				}
				once.Do(func() { firstErr = err })
			}
			cancel()
		}()
	}
	wg.Wait()
	return firstErr
}

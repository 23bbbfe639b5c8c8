package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/natsbus"
	"github.com/atollhq/atoll/lbsync"
	"github.com/atollhq/atoll/templates"
)

// inlineSidecar is the HAProxy half of `atoll lb` inside the benchmark's
// own process (-inline), wired as cmd/atoll does it: an events.Follower on
// NATS feeding an lbsync.Syncer whose applier runs the real haproxy in dir.
// Its steps are timed (timing.go), so a latency can be split; the price is
// that the sidecar shares its process, and so its garbage collector, with
// the benchmark's backends, prober and leader.
type inlineSidecar struct {
	applier  *lbsync.HAProxyApplier
	follower *events.Follower
	timeline *timeline
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// startInlineSidecar starts following on nc; HAProxy starts with the
// first snapshot. Stop ends it.
func startInlineSidecar(ctx context.Context, nc *nats.Conn, bin, dir string, minReload time.Duration) (*inlineSidecar, error) {
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	httpsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	statsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	hdir := filepath.Join(dir, "haproxy")
	if err := os.MkdirAll(hdir, 0o755); err != nil {
		return nil, fmt.Errorf("sidecar dir: %w", err)
	}
	cfg := lbsync.Config{
		Group: "external", BindAddr: "127.0.0.1", HTTPPort: httpPort, HTTPSPort: httpsPort,
		StatsBind:  "127.0.0.1:" + strconv.Itoa(statsPort),
		SocketPath: filepath.Join(hdir, "admin.sock"), MapPath: filepath.Join(hdir, "hosts.map"), PathMapPath: filepath.Join(hdir, "paths.map"),
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "lb")
	s := &inlineSidecar{applier: &lbsync.HAProxyApplier{Config: cfg, Bin: bin, ConfigPath: filepath.Join(hdir, "haproxy.cfg")}, timeline: &timeline{}}
	syncer := lbsync.NewSyncer(cfg, templates.MustDefault(), timedApplier{s.applier, s.timeline}, minReload, log)
	s.follower = &events.Follower{Source: &natsbus.Source{NC: nc}, Handler: timedSyncer{syncer, s.timeline}, Log: log.With("part", "follower")}

	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := syncer.Run(ctx); err != nil {
			log.Error("syncer stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.follower.Run(ctx); err != nil {
			log.Error("follower stopped", "err", err)
		}
	}()
	return s, nil
}

func (s *inlineSidecar) reloads(ctx context.Context) (int, error) {
	p := s.applier.Process()
	if p == nil {
		return 0, fmt.Errorf("haproxy is not running")
	}
	info, err := p.ShowProc(ctx)
	if err != nil {
		return 0, fmt.Errorf("show proc: %w", err)
	}
	return info.MasterReloads, nil
}

func (s *inlineSidecar) ownReloads(context.Context) (int, error) {
	p := s.applier.Process()
	if p == nil {
		return 0, fmt.Errorf("haproxy is not running")
	}
	return p.Reloads(), nil
}

// reloaded is when the first Apply that started after t0 returned: the
// Syncer's rate limit counts from there.
func (s *inlineSidecar) reloaded(ctx context.Context, t0 time.Time, _ int, timeout time.Duration) (time.Time, error) {
	return s.timeline.applied(ctx, t0, timeout)
}

func (s *inlineSidecar) split(published, served []time.Time) breakdown {
	return s.timeline.split(published, served)
}

func (s *inlineSidecar) describe(from time.Time) string {
	return s.timeline.describe(from, time.Now())
}

// stop ends the follower and syncer, then soft-stops HAProxy.
func (s *inlineSidecar) stop() {
	s.cancel()
	s.wg.Wait()
	_ = s.applier.Close()
}

// diagnose says what the sidecar did since t0 and what HAProxy serves for
// a, for error messages.
func (s *inlineSidecar) diagnose(ctx context.Context, a *appModel, t0 time.Time, leaderSeq uint64) string {
	rt := s.applier.Runtime()
	what := "no runtime API yet"
	if rt != nil {
		what = serversOf(ctx, rt, a)
	}
	return fmt.Sprintf("since the publish:%s; %s; follower applied %d events, %d resyncs; leader at seq %d",
		s.timeline.describe(t0, time.Now()), what, s.follower.Applied(), s.follower.Resyncs(), leaderSeq)
}

// serversOf describes what HAProxy's runtime API says of a's backend, for
// error messages.
func serversOf(ctx context.Context, rt *lbsync.Runtime, a *appModel) string {
	states, err := rt.ShowServersState(ctx)
	if err != nil {
		return "show servers state: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "servers of %s:", appID(a.idx))
	for _, st := range states {
		if strings.HasPrefix(st.Backend, "bench_app"+fmt.Sprintf("%05d_", a.idx)) && !st.Maint() {
			fmt.Fprintf(&b, " %s=%s:%d", st.Server, st.Addr, st.Port)
		}
	}
	return b.String()
}

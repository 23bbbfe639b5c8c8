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
	"github.com/atollhq/atoll/lbsync"
	"github.com/atollhq/atoll/templates"
)

// sidecar is the HAProxy half of `atoll lb`, wired as cmd/atoll does it:
// an events.Follower on NATS feeding an lbsync.Syncer whose applier runs
// the real haproxy in dir.
type sidecar struct {
	applier  *lbsync.HAProxyApplier
	follower *events.Follower
	timeline *timeline
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// startSidecar starts following on nc; HAProxy starts with the first
// snapshot. Stop ends it.
func startSidecar(ctx context.Context, nc *nats.Conn, bin, dir string, minReload time.Duration) (*sidecar, error) {
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
	s := &sidecar{applier: &lbsync.HAProxyApplier{Config: cfg, Bin: bin, ConfigPath: filepath.Join(hdir, "haproxy.cfg")}, timeline: &timeline{}}
	syncer := lbsync.NewSyncer(cfg, templates.MustDefault(), timedApplier{s.applier, s.timeline}, minReload, log)
	s.follower = &events.Follower{Source: &events.NATSSource{NC: nc}, Handler: timedSyncer{syncer, s.timeline}, Log: log.With("part", "follower")}

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

// process waits until HAProxy runs.
func (s *sidecar) process(ctx context.Context, timeout time.Duration) (*lbsync.Process, error) {
	deadline := time.Now().Add(timeout)
	for {
		if p := s.applier.Process(); p != nil {
			return p, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("haproxy not started after %v", timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// reloads is the master's own reload count ("show proc").
func (s *sidecar) reloads(ctx context.Context) (int, error) {
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

// stop ends the follower and syncer, then soft-stops HAProxy.
func (s *sidecar) stop() {
	s.cancel()
	s.wg.Wait()
	_ = s.applier.Close()
}

// servers describes what HAProxy's runtime API says of a's backend, for
// error messages.
func (s *sidecar) servers(ctx context.Context, a *appModel) string {
	rt := s.applier.Runtime()
	if rt == nil {
		return "no runtime API yet"
	}
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

// diagnose says what the sidecar did since t0 and what HAProxy serves for
// a, for error messages.
func (s *sidecar) diagnose(ctx context.Context, a *appModel, t0 time.Time, leaderSeq uint64) string {
	return fmt.Sprintf("since the publish:%s; %s; follower applied %d events, %d resyncs; leader at seq %d",
		s.timeline.describe(t0, time.Now()), s.servers(ctx, a), s.follower.Applied(), s.follower.Resyncs(), leaderSeq)
}

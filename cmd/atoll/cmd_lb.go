package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/lbsync"
	"github.com/atollhq/atoll/templates"
)

// runLB is `atoll lb`: HAProxy on this node kept in line with the cluster,
// from NATS (default) or any Marathon-compatible /v2/events stream (--sse).
func runLB(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll lb", flag.ContinueOnError)
	var nf natsFlags
	nf.register(fs)
	var o lbOptions
	o.register(fs)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	log := newLogger(stderr, *logLevel).With("component", "lb")
	if err := serveLB(ctx, nf, o, log); err != nil {
		fmt.Fprintln(stderr, "atoll lb:", err)
		return 1
	}
	return 0
}

// lbOptions are the HAProxy sidecar's flags, shared by `atoll lb` and
// (later) `atoll sidecar` and `atoll dev`.
type lbOptions struct {
	sse, configPath, bin, templatesDir, group, bindAddr, statsBind string
	httpPort, httpsPort                                            int
	minReload                                                      time.Duration
}

func (o *lbOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.sse, "sse", "", "follow this Marathon-compatible base URL's /v2/events instead of NATS (a real Marathon works)")
	fs.StringVar(&o.configPath, "haproxy-config", "./.atoll/haproxy/haproxy.cfg", "the live HAProxy config; maps, sockets and the last 5 configs go beside it")
	fs.StringVar(&o.bin, "haproxy-bin", "haproxy", "the haproxy binary")
	fs.StringVar(&o.templatesDir, "templates-dir", "", "folder whose files replace the embedded templates of the same name")
	fs.StringVar(&o.group, "group", "external", "the HAPROXY_GROUP this node serves")
	fs.StringVar(&o.bindAddr, "bind-addr", "*", "address the service ports and vhost frontends bind to")
	fs.StringVar(&o.statsBind, "stats", "127.0.0.1:9090", "address of HAProxy's stats page")
	fs.IntVar(&o.httpPort, "http-port", 80, "port of the HTTP vhost frontend")
	fs.IntVar(&o.httpsPort, "https-port", 443, "port of the HTTPS vhost frontend (rendered when an app has a certificate)")
	fs.DurationVar(&o.minReload, "min-reload-interval", time.Second, "reloads come no more often than this; membership changes are applied at once")
}

// serveLB runs HAProxy and keeps it in line until ctx ends, then stops it.
func serveLB(ctx context.Context, nf natsFlags, o lbOptions, log *slog.Logger) error {
	set, err := templates.Load(o.templatesDir)
	if err != nil {
		return err
	}
	path, err := filepath.Abs(o.configPath)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("haproxy config folder: %w", err)
	}
	cfg := lbsync.Config{
		Group: o.group, BindAddr: o.bindAddr, HTTPPort: o.httpPort, HTTPSPort: o.httpsPort, StatsBind: o.statsBind,
		SocketPath: filepath.Join(dir, "admin.sock"), MapPath: filepath.Join(dir, "hosts.map"), PathMapPath: filepath.Join(dir, "paths.map"),
	}
	applier := &lbsync.HAProxyApplier{Config: cfg, Bin: o.bin, ConfigPath: path}
	defer applier.Close()
	syncer := lbsync.NewSyncer(cfg, set, applier, o.minReload, log)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := syncer.Run(ctx); err != nil {
			log.Error("lb syncer stopped", "err", err)
		}
		cancel()
	}()

	if o.sse != "" {
		log.Info("lb following a Marathon event stream", "url", redact(o.sse), "haproxy-config", path)
		return (&lbsync.MarathonSource{URL: o.sse, Log: log}).Run(ctx, syncer.Update)
	}
	nc, err := nf.connect("atoll-lb", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	log.Info("lb following the cluster over NATS", "nats", redact(nf.url), "haproxy-config", path)
	f := &events.Follower{Source: &events.NATSSource{NC: nc, Subjects: nf.subjects()}, Handler: syncer, Log: log.With("part", "follower")}
	return f.Run(ctx)
}

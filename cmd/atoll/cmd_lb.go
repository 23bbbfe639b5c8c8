package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/natsbus"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/tlsfiles"
	"github.com/atollhq/atoll/lbsync"
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
	// With --sse, NATS is only for publishing reports: wanted when asked
	// for, not because of the flag's default.
	fs.Visit(func(f *flag.Flag) { o.reportNATS = o.reportNATS || f.Name == "nats" })
	o.reportNATS = o.reportNATS || os.Getenv("ATOLL_NATS") != ""
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
	sse, sseCA, configPath, bin, templatesDir, group, bindAddr, statsBind string
	httpPort, httpsPort                                                   int
	minReload, reconcile                                                  time.Duration
	node, metricsAddr                                                     string
	// reportNATS: with --sse, connect to NATS anyway to publish reports.
	reportNATS bool
}

func (o *lbOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.sse, "sse", "", "follow this Marathon-compatible base URL's /v2/events instead of NATS (a real Marathon works); http:// or https://, user:pass@ in it is sent as basic auth")
	fs.StringVar(&o.sseCA, "sse-ca-cert", "", "PEM CA file that verifies an https:// --sse master (default: the system's roots)")
	fs.StringVar(&o.configPath, "haproxy-config", "./.atoll/haproxy/haproxy.cfg", "the live HAProxy config; maps, sockets and the last 5 configs go beside it")
	fs.StringVar(&o.bin, "haproxy-bin", "haproxy", "the haproxy binary")
	fs.StringVar(&o.templatesDir, "templates-dir", "", "folder whose files replace the embedded templates of the same name")
	fs.StringVar(&o.group, "group", "external", "the HAPROXY_GROUP this node serves")
	fs.StringVar(&o.bindAddr, "bind-addr", "*", "address the service ports and vhost frontends bind to")
	fs.StringVar(&o.statsBind, "stats", "127.0.0.1:9090", "address of HAProxy's stats page")
	fs.IntVar(&o.httpPort, "http-port", 80, "port of the HTTP vhost frontend")
	fs.IntVar(&o.httpsPort, "https-port", 443, "port of the HTTPS vhost frontend (rendered when an app has a certificate)")
	fs.DurationVar(&o.minReload, "min-reload-interval", time.Second, "reloads come no more often than this; membership changes are applied at once")
	fs.DurationVar(&o.reconcile, "reconcile-interval", 30*time.Second, "how often HAProxy's servers are compared with the wanted state and repaired (0 never)")
	fs.StringVar(&o.node, "node", "", "this node's name in the problems it reports: the name of its --nats-creds credential, which the master takes them under (default: that name)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "127.0.0.1:9091", `address of the load balancer's /metrics ("" disables)`)
}

// serveLB runs HAProxy and keeps it in line until ctx ends, then stops it.
func serveLB(ctx context.Context, nf natsFlags, o lbOptions, log *slog.Logger) error {
	var sseTLS *tls.Config // nil: the system's roots
	if o.sseCA != "" {
		var err error
		if sseTLS, err = tlsfiles.Client(o.sseCA); err != nil {
			return fmt.Errorf("--sse-ca-cert: %w", err)
		}
	}
	tw := &lbsync.TemplateWatcher{Dir: o.templatesDir}
	set, err := tw.Load()
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
	metrics := lbsync.NewMetrics()
	applier := &lbsync.HAProxyApplier{Config: cfg, Bin: o.bin, ConfigPath: path, Metrics: metrics}
	defer applier.Close()
	syncer := lbsync.NewSyncer(cfg, set, applier, o.minReload, log)
	syncer.Metrics = metrics
	syncer.ReconcileInterval = o.reconcile
	syncer.RetainState = o.templatesDir != "" // a new set renders at once

	// Stop every goroutine (cancel) before waiting for them.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go1 := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	go1(func() {
		if err := syncer.Run(ctx); err != nil {
			log.Error("lb syncer stopped", "err", err)
		}
		cancel()
	})
	if o.metricsAddr != "" {
		serveLBMetrics(ctx, o.metricsAddr, metrics, log, go1)
	}
	if o.templatesDir != "" {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		tw.Poke = hup
		go1(func() { tw.Run(ctx, syncer) })
	}

	var nc *nats.Conn
	runCtx := ctx
	if o.sse == "" || o.reportNATS {
		// Reports go out under the credential's name (the master takes
		// the node from the subject): a --node that says otherwise would
		// be ignored, so it is refused.
		id, err := nf.readIdentity(natsauth.RoleSidecar)
		if err != nil {
			return err
		}
		if o.node != "" && events.NodeToken(o.node) != events.NodeToken(id.Name) {
			return fmt.Errorf("--node %q is not the name of the sidecar's credential (%q): its reports are taken under the credential's name", o.node, id.Name)
		}
		if runCtx, nc, err = nf.dial(ctx, "atoll-lb", natsauth.RoleSidecar, log); err != nil {
			return err
		}
		defer nc.Close()
		syncer.SetReporter(natsReporter(nc, nf.subjects(), nf.identity.Name, log))
	}
	if o.sse != "" {
		src := &lbsync.MarathonSource{URL: o.sse, TLS: sseTLS, Log: log}
		log.Info("lb following a Marathon event stream", "url", redact(o.sse), "haproxy-config", path, "reports-on-nats", nc != nil)
		return natsCause(runCtx, src.Run(runCtx, syncer.Update))
	}
	log.Info("lb following the cluster over NATS", "nats", redact(nf.url), "haproxy-config", path)
	f := &events.Follower{Source: &natsbus.Source{NC: nc, Subjects: nf.subjects()}, Handler: syncer, Log: log.With("part", "follower")}
	return natsCause(runCtx, f.Run(runCtx))
}

// natsReporter publishes each problem the syncer reports as an
// events.LBReport, for the master to relay to /v2/events.
func natsReporter(nc *nats.Conn, subj events.Subjects, node string, log *slog.Logger) lbsync.Reporter {
	return func(e lbsync.AppError) {
		data, err := json.Marshal(events.LBReport{Node: node, AppID: e.AppID, PortIndex: e.PortIndex, Error: e.Err, Time: time.Now().UTC()})
		if err == nil {
			err = nc.Publish(subj.LBReport(node), data)
		}
		if err != nil {
			log.Warn("lb report not published", "err", err)
		}
	}
}

// serveLBMetrics serves /metrics on addr until ctx ends. A taken port is
// logged, not fatal: metrics are not worth stopping the load balancer.
func serveLBMetrics(ctx context.Context, addr string, m *lbsync.Metrics, log *slog.Logger, goRun func(func())) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("lb metrics not served", "addr", addr, "err", err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("lb metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	goRun(func() { _ = hs.Serve(ln) })
	goRun(func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	})
}

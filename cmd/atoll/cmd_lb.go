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

// lbOptions are the HAProxy sidecar's flags, shared by `atoll lb`,
// `atoll sidecar` and (some of them) `atoll dev`.
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
// Over NATS it is a sidecar process with the load balancer alone; with
// --sse it follows a Marathon event stream instead.
func serveLB(ctx context.Context, nf natsFlags, o lbOptions, log *slog.Logger) error {
	if o.sse == "" {
		return serveNodeSidecar(ctx, nf, sidecarParts{lb: &o}, log)
	}
	var sseTLS *tls.Config // nil: the system's roots
	if o.sseCA != "" {
		var err error
		if sseTLS, err = tlsfiles.Client(o.sseCA); err != nil {
			return fmt.Errorf("--sse-ca-cert: %w", err)
		}
	}
	lb, err := newLBPart(o, log)
	if err != nil {
		return err
	}
	runCtx := ctx
	var nc *nats.Conn
	if o.reportNATS {
		if err := checkLBNode(&nf, o); err != nil {
			lb.close()
			return err
		}
		if runCtx, nc, err = nf.dial(ctx, "atoll-lb", natsauth.RoleSidecar, log); err != nil {
			lb.close()
			return err
		}
		defer nc.Close()
		lb.syncer.SetReporter(natsReporter(nc, nf.subjects(), nf.identity.Name, log))
	}
	src := &lbsync.MarathonSource{URL: o.sse, TLS: sseTLS, Log: log}
	log.Info("lb following a Marathon event stream", "url", redact(o.sse), "haproxy-config", lb.path, "reports-on-nats", nc != nil)
	return natsCause(runCtx, runParts(runCtx, map[string]func(context.Context) error{
		"load balancer":         lb.run,
		"marathon event stream": func(ctx context.Context) error { return src.Run(ctx, lb.syncer.Update) },
	}))
}

// checkLBNode refuses a --node that is not the name of the sidecar's
// credential: reports go out under the credential's name (the master takes
// the node from the subject), so another would be ignored.
func checkLBNode(nf *natsFlags, o lbOptions) error {
	id, err := nf.readIdentity(natsauth.RoleSidecar)
	if err != nil {
		return err
	}
	if o.node != "" && events.NodeToken(o.node) != events.NodeToken(id.Name) {
		return fmt.Errorf("--node %q is not the name of the sidecar's credential (%q): its reports are taken under the credential's name", o.node, id.Name)
	}
	return nil
}

// lbPart is the load balancer of a sidecar process, built and ready to be
// fed: its Syncer takes a follower's calls (or an SSE source's states),
// and run applies what it renders to HAProxy.
type lbPart struct {
	o       lbOptions
	log     *slog.Logger
	path    string // the live HAProxy config
	tw      *lbsync.TemplateWatcher
	metrics *lbsync.Metrics
	applier *lbsync.HAProxyApplier
	syncer  *lbsync.Syncer
}

// newLBPart loads the templates and makes HAProxy's folder; nothing runs
// yet. Call run, or close if run will not be called.
func newLBPart(o lbOptions, log *slog.Logger) (*lbPart, error) {
	tw := &lbsync.TemplateWatcher{Dir: o.templatesDir}
	set, err := tw.Load()
	if err != nil {
		return nil, err
	}
	path, err := filepath.Abs(o.configPath)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("haproxy config folder: %w", err)
	}
	cfg := lbsync.Config{
		Group: o.group, BindAddr: o.bindAddr, HTTPPort: o.httpPort, HTTPSPort: o.httpsPort, StatsBind: o.statsBind,
		SocketPath: filepath.Join(dir, "admin.sock"), MapPath: filepath.Join(dir, "hosts.map"), PathMapPath: filepath.Join(dir, "paths.map"),
	}
	metrics := lbsync.NewMetrics()
	applier := &lbsync.HAProxyApplier{Config: cfg, Bin: o.bin, ConfigPath: path, Metrics: metrics}
	syncer := lbsync.NewSyncer(cfg, set, applier, o.minReload, log)
	syncer.Metrics = metrics
	syncer.ReconcileInterval = o.reconcile
	syncer.RetainState = o.templatesDir != "" // a new set renders at once
	return &lbPart{o: o, log: log, path: path, tw: tw, metrics: metrics, applier: applier, syncer: syncer}, nil
}

// close stops HAProxy if it runs.
func (p *lbPart) close() {
	if err := p.applier.Close(); err != nil {
		p.log.Warn("haproxy stop", "err", err)
	}
}

// run applies the syncer's renders to HAProxy, serves /metrics and
// watches the templates until ctx ends, then stops HAProxy. The syncer
// stops only with ctx; if it did anyway, that is the error.
func (p *lbPart) run(ctx context.Context) error {
	defer p.close()
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
	if p.o.metricsAddr != "" {
		serveLBMetrics(ctx, p.o.metricsAddr, p.metrics, p.log, go1)
	}
	if p.o.templatesDir != "" {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		p.tw.Poke = hup
		go1(func() { p.tw.Run(ctx, p.syncer) })
	}
	err := p.syncer.Run(ctx)
	if ctx.Err() == nil {
		return fmt.Errorf("lb syncer stopped: %v", err)
	}
	return nil
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

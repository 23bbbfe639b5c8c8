package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/atollhq/atoll/agent"
	"github.com/atollhq/atoll/deploy"
	"github.com/atollhq/atoll/dnsserver"
	"github.com/atollhq/atoll/events/embedded"
	"github.com/atollhq/atoll/internal/fsperm"
	"github.com/atollhq/atoll/internal/natsauth"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll dev", flag.ContinueOnError)
	natsAddr := fs.String("nats", "127.0.0.1:4222", "address of the embedded NATS server")
	httpAddr := fs.String("http", "127.0.0.1:8080", "address of the master's API")
	agents := fs.Int("agents", 3, "number of agents (agent-N advertises 127.0.0.N+1)")
	dataDir := fs.String("data-dir", defaultDevDataDir, "folder for the master's store and the agents' work dirs")
	agentTimeout := fs.Duration("agent-timeout", 15*time.Second, "heartbeat silence after which an agent is unreachable")
	demo := fs.Bool("demo", false, "deploy the demo app (deploy/examples/echo.json)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	isolation := fs.String("isolation", devIsolation(), "cgroups: every task in a cgroup of its own, held to its app's cpus and mem (needs root); none: unlimited (the default when not root)")
	var cf containerFlags
	cf.register(fs)
	var df dnsFlags
	df.register(fs, "127.0.0.1:8053", "dns-http")
	lb := fs.Bool("lb", true, "run HAProxy kept in line with the cluster, when haproxy is installed")
	lbHTTPPort := fs.Int("lb-http-port", 8081, "port of HAProxy's vhost frontend (service ports bind on 127.0.0.1)")
	lbStats := fs.String("lb-stats", "127.0.0.1:9090", "address of HAProxy's stats page")
	lbMetrics := fs.String("lb-metrics", "127.0.0.1:9091", `address of the load balancer's /metrics ("" disables)`)
	var sec apiSecurityFlags
	sec.register(fs, false)
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	if *agents < 1 || *agents > 200 {
		fmt.Fprintln(stderr, "atoll dev: --agents must be between 1 and 200")
		return 2
	}
	log := newLogger(stderr, *logLevel)
	security, err := sec.resolve(os.Getenv, log.With("component", "master"))
	if err != nil {
		fmt.Fprintln(stderr, "atoll dev:", err)
		return 2
	}
	if security.credentials == "" {
		// Secure by default: the dev API has credentials too, made on
		// the first run; the CLI run here finds them by itself.
		if err := fsperm.Dir(*dataDir, devDataDirMode, log); err != nil {
			fmt.Fprintln(stderr, "atoll dev:", err)
			return 1
		}
		security.credentials, security.source, err = devAPICredentials(*dataDir)
		if err != nil {
			fmt.Fprintln(stderr, "atoll dev:", err)
			return 1
		}
		sec.credentialsFile = security.source
	}
	o := devOptions{
		natsAddr: *natsAddr, httpAddr: *httpAddr, agents: *agents, dataDir: *dataDir,
		agentTimeout: *agentTimeout, demo: *demo, dnsHTTP: df.httpAddr, dnsPprof: df.pprof, security: security,
		credentialsFile: sec.credentialsFile, caFile: sec.tlsCA, isolation: *isolation, containers: cf,
	}
	if *lb {
		o.lb = &lbOptions{
			configPath: filepath.Join(*dataDir, "haproxy", "haproxy.cfg"), bin: "haproxy", group: "external",
			bindAddr: "127.0.0.1", statsBind: *lbStats, httpPort: *lbHTTPPort, httpsPort: 0, minReload: time.Second,
			reconcile: 30 * time.Second, node: "dev", metricsAddr: *lbMetrics,
		}
	}
	if df.addr != "" { // --dns "" runs no DNS
		cfg, err := df.config()
		if err != nil {
			fmt.Fprintln(stderr, "atoll dev:", err)
			return 2
		}
		o.dns = &cfg
	}
	if err := dev(ctx, o, stdout, log); err != nil {
		fmt.Fprintln(stderr, "atoll dev:", err)
		return 1
	}
	return 0
}

// devDataDirMode is the mode of atoll dev's --data-dir.
const devDataDirMode = 0o711

type devOptions struct {
	natsAddr, httpAddr, dataDir string
	agents                      int
	agentTimeout                time.Duration
	demo                        bool
	dns                         *dnsserver.Config // nil: no DNS sidecar
	dnsHTTP                     string
	dnsPprof                    bool
	lb                          *lbOptions // nil: no HAProxy
	security                    apiSecurity
	credentialsFile, caFile     string // for the banner
	isolation                   string // the agents' --isolation
	containers                  containerFlags
}

// devIsolation is atoll dev's default --isolation: cgroups need root, and
// a developer's cluster run as themselves runs its tasks unlimited.
func devIsolation() string {
	if os.Geteuid() == 0 {
		return string(agent.IsolationCgroups)
	}
	return string(agent.IsolationNone)
}

// dev runs NATS, a master, the agents and the DNS sidecar in this process
// until ctx ends, then stops them in reverse order: agents kill their tasks
// first.
func dev(ctx context.Context, o devOptions, stdout io.Writer, log *slog.Logger) error {
	// Made here, before the parts that make their folders in it: no other
	// user may list it. Traversable (--x), so a task that runs as another
	// user can reach its own sandbox under an agent's work dir; each part
	// keeps its own folder as private as it needs (the master's store and
	// the authority: 0700).
	if err := fsperm.Dir(o.dataDir, devDataDirMode, log); err != nil {
		return err
	}
	da, err := setupDevAuth(o.dataDir)
	if err != nil {
		return err
	}
	srv, err := embedded.StartConfig(embedded.Config{Listen: o.natsAddr, Trust: &da.trust, TLS: da.tls,
		Log: natsLog(log)})
	if err != nil {
		return err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	url := srv.ClientURL()
	masterNF, err := da.flags(url, natsauth.RoleMaster, "dev-master")
	if err != nil {
		return err
	}
	sidecarNF, err := da.flags(url, natsauth.RoleSidecar, devSidecarNode)
	if err != nil {
		return err
	}
	var agentNFs []natsFlags
	for i := 1; i <= o.agents; i++ {
		nf, err := da.flags(url, natsauth.RoleAgent, fmt.Sprintf("agent-%d", i))
		if err != nil {
			return err
		}
		agentNFs = append(agentNFs, nf)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, o.agents+2) // agents, master, sidecar
	var wg sync.WaitGroup
	masterCtx, stopMaster := context.WithCancel(context.Background())
	defer stopMaster()
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := serveMaster(masterCtx, masterOptions{
			nats: masterNF, httpAddr: o.httpAddr, dataDir: filepath.Join(o.dataDir, "master"),
			agentTimeout: o.agentTimeout, security: o.security,
		}, log.With("component", "master"))
		if err != nil {
			errs <- fmt.Errorf("master: %w", err)
		}
	}()

	var agentsWG sync.WaitGroup
	var names []string
	for i := 1; i <= o.agents; i++ {
		name := fmt.Sprintf("agent-%d", i)
		names = append(names, name)
		ao := agentOptions{
			nats:        agentNFs[i-1],
			hostname:    name,
			advertiseIP: fmt.Sprintf("127.0.0.%d", i+1),
			attributes:  fmt.Sprintf("region:r%d", i),
			ports:       fmt.Sprintf("%d-%d", 31000+(i-1)*1000, 31000+(i-1)*1000+999),
			workDir:     filepath.Join(o.dataDir, name),
			cpus:        2, mem: 2048, disk: 10240,
			heartbeat: time.Second, isolation: o.isolation,
			// A bridge and a subnet each, all in 198.18.0.0/15: the
			// agents share the machine's network namespace.
			containers: o.containers, bridgeName: fmt.Sprintf("atolldev%d", i), bridgeSubnet: fmt.Sprintf("198.19.%d.0/24", i),
		}
		agentsWG.Add(1)
		go func() {
			defer agentsWG.Done()
			if err := serveAgent(ctx, ao, true, log.With("component", "agent", "agent", name)); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}

	// The node's sidecar (DNS and HAProxy on one follower) follows the
	// master as a node's would, on its own NATS connection; it stops
	// with ctx, as the agents do.
	var sidecarWG sync.WaitGroup
	var sidecar *nodeSidecar
	stopAll := func() {
		cancel()
		agentsWG.Wait()
		stopMaster()
		wg.Wait()
		sidecarWG.Wait()
	}
	parts := sidecarParts{dns: o.dns, dnsHTTP: o.dnsHTTP, pprof: o.dnsPprof}
	lbLine := ""
	if o.lb != nil {
		if _, err := exec.LookPath(o.lb.bin); err != nil {
			lbLine = "  HAProxy        not installed: no load balancer (apt-get install haproxy, or make deps)\n"
		} else {
			parts.lb = o.lb
			lbLine = fmt.Sprintf("  HAProxy        service ports on 127.0.0.1 (the demo: curl 127.0.0.1:10000), vhosts on :%d, stats %s\n",
				o.lb.httpPort, o.lb.statsBind)
			if o.lb.metricsAddr != "" {
				lbLine += fmt.Sprintf("  LB metrics     http://%s/metrics\n", o.lb.metricsAddr)
			}
		}
	}
	if parts.dns != nil || parts.lb != nil {
		sidecar, err = startDevSidecar(ctx, sidecarNF, parts, &sidecarWG, errs, log)
		if err != nil {
			stopAll()
			return err
		}
	}

	api := "http://" + o.httpAddr
	hc := &http.Client{Timeout: 10 * time.Second}
	if o.security.tls != nil {
		api = "https://" + o.httpAddr
		hc.Transport = &http.Transport{TLSClientConfig: o.security.peerTLS}
	}
	if err := waitHTTP(ctx, hc, api+"/ping", 10*time.Second); err != nil {
		stopAll()
		return err
	}
	if sidecar != nil && sidecar.dns != nil {
		if err := waitReady(ctx, sidecar.dns, errs, 10*time.Second); err != nil {
			stopAll()
			return err
		}
	}
	if o.demo {
		if err := deployDemo(ctx, hc, api, o.security.credentials); err != nil {
			log.Warn("demo app not deployed", "err", err)
		}
	}
	var dnsSidecar *dnsserver.Sidecar
	if sidecar != nil {
		dnsSidecar = sidecar.dns
	}
	printDevBanner(stdout, o, srv.ClientURL(), api, names, dnsSidecar, lbLine)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	fmt.Fprintln(stdout, "\natoll dev: stopping agents and their tasks...")
	stopAll()
	return runErr
}

// startDevSidecar starts the node's sidecar on the embedded NATS; its
// error, if it fails, goes to errs.
func startDevSidecar(ctx context.Context, nf natsFlags, parts sidecarParts, wg *sync.WaitGroup, errs chan<- error, log *slog.Logger) (*nodeSidecar, error) {
	ctx, nc, err := nf.dial(ctx, parts.connName(), natsauth.RoleSidecar, log)
	if err != nil {
		return nil, err
	}
	sc, err := newNodeSidecar(nf, nc, parts, log)
	if err != nil {
		nc.Close()
		return nil, err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer nc.Close()
		if err := natsCause(ctx, sc.run(ctx)); err != nil {
			errs <- fmt.Errorf("sidecar: %w", err)
		}
	}()
	return sc, nil
}

// waitReady waits until the sidecar's DNS server serves, so that the
// banner's dig examples work when printed.
func waitReady(ctx context.Context, sc *dnsserver.Sidecar, errs <-chan error, timeout time.Duration) error {
	select {
	case <-sc.Ready():
		return nil
	case err := <-errs:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return fmt.Errorf("dns server not serving after %s", timeout)
	}
}

func waitHTTP(ctx context.Context, hc *http.Client, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answering after %s: %v", url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// deployDemo posts the demo app; an app left from an earlier run is fine.
func deployDemo(ctx context.Context, hc *http.Client, api, credentials string) error {
	// The API answers /ping before the master leads; until it does, a
	// change gets 502/503 ("no leader yet"): ask again, for a while.
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, err := postDemo(ctx, hc, api, credentials)
		if err == nil || (status != http.StatusBadGateway && status != http.StatusServiceUnavailable) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// postDemo creates the demo app once; an app already there is fine.
func postDemo(ctx context.Context, hc *http.Client, api, credentials string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, api+"/v2/apps", bytes.NewReader(deploy.EchoApp))
	req.Header.Set("Content-Type", "application/json")
	if user, pass, ok := strings.Cut(credentials, ":"); ok {
		req.SetBasicAuth(user, pass)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusConflict {
		return resp.StatusCode, nil
	}
	var body struct {
		Message string `json:"message"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, fmt.Errorf("POST /v2/apps: %s: %s", resp.Status, body.Message)
}

func printDevBanner(w io.Writer, o devOptions, natsURL, api string, agents []string, sc *dnsserver.Sidecar, lbLine string) {
	dnsLine, dnsTry := devDNSBanner(o, sc)
	dnsLine += lbLine
	setup, curl := devAPIBanner(o, api)
	signIn := ""
	switch {
	case o.security.credentials == "":
	case o.credentialsFile != "":
		signIn = "   (sign in with the user:password in " + o.credentialsFile + ")"
	default:
		signIn = "   (sign in with $" + envHTTPCredentials + ")"
	}
	fmt.Fprintf(w, `
atoll dev is running (Ctrl-C stops everything, tasks included)

  Marathon API   %[1]s        (/v2/apps, /v2/tasks, /v2/deployments, /master/state)
  web UI         %[1]s/ui/%[11]s
  NATS           %[2]s
  agents         %[3]d: %[4]v on 127.0.0.2..127.0.0.%[5]d, regions r1..r%[3]d
%[7]s  data           %[6]s

Try:
%[9]s  curl -s%[10]s %[1]s/v2/apps | jq
  ./bin/atoll app list
  ./bin/atoll task list
  ./bin/atoll agents
  ./bin/atoll top                      (apps and agents, live)
  ./bin/atoll events                   (the event stream, readable)
  ./bin/atoll app scale /demo/echo 2
  ./bin/atoll app deploy -f deploy/examples/echo.json
  curl -s http://127.0.0.2:31000/      (a demo task answers with its task id)
%[8]s`, api, natsURL, o.agents, agents, o.agents+1, o.dataDir, dnsLine, dnsTry, setup, curl, signIn)
}

// devAPIBanner is what a user types before the CLI reaches a master with
// credentials or HTTPS, and what curl needs for it. No secret is printed.
// The CLI finds the default dev cluster (its address, its credentials in
// .atoll/auth/api-credentials) by itself: nothing to type then.
func devAPIBanner(o devOptions, api string) (setup, curlFlags string) {
	if (o.security.tls != nil || o.security.credentials != "") && api != cliDefaultMaster {
		setup += fmt.Sprintf("  export ATOLL_MASTER=%s\n", api)
	}
	if o.security.credentials != "" {
		switch {
		case o.credentialsFile == filepath.Join(defaultDevDataDir, devAPICredentialsFile):
			curlFlags += ` -u "$(head -1 ` + o.credentialsFile + `)"`
		case o.credentialsFile != "":
			setup += fmt.Sprintf("  export %s=\"$(head -1 %s)\"\n", envHTTPCredentials, o.credentialsFile)
			curlFlags += ` -u "$` + envHTTPCredentials + `"`
		default: // it came from the environment: it is there already
			curlFlags += ` -u "$` + envHTTPCredentials + `"`
		}
	}
	if o.security.tls != nil && o.caFile != "" {
		setup += fmt.Sprintf("  export ATOLL_CA_CERT=%s\n", o.caFile)
		curlFlags += ` --cacert "$ATOLL_CA_CERT"`
	}
	return setup, curlFlags
}

// devDNSBanner is the DNS part of the banner: its line among the parts
// and dig examples for the demo app (/demo/echo is task echo.demo).
func devDNSBanner(o devOptions, sc *dnsserver.Sidecar) (line, try string) {
	if sc == nil {
		return "", ""
	}
	host, port, err := net.SplitHostPort(sc.DNSAddr().String())
	if err != nil {
		return "", ""
	}
	c := o.dns
	task := "echo.demo." + c.Framework + "." + c.Domain
	line = fmt.Sprintf("  DNS            %s port %s, UDP and TCP (domain %s; other names go to %s)\n",
		host, port, c.Domain, strings.Join(c.Resolvers, ", "))
	try = fmt.Sprintf("  dig @%[1]s -p %[2]s %[3]s\n  dig @%[1]s -p %[2]s _echo.demo._tcp.%[4]s.%[5]s SRV\n  dig @%[1]s -p %[2]s leader.%[5]s\n",
		host, port, task, c.Framework, c.Domain)
	if a := sc.HTTPAddr(); a != nil {
		line += fmt.Sprintf("  DNS HTTP API   http://%s/v1/   (Mesos-DNS: hosts, services, enumerate, axfr; /metrics)\n", a)
		try += fmt.Sprintf("  curl -s http://%s/v1/services/_echo.demo._tcp.%s.%s | jq\n", a, c.Framework, c.Domain)
	}
	return line, try
}

// natsLog is the dev NATS server's log: its warnings and errors only (a
// refused client, a permission violation); its notices would crowd the
// parts' own lines.
func natsLog(log *slog.Logger) *slog.Logger {
	return slog.New(minLevel{log.With("component", "nats").Handler(), slog.LevelWarn})
}

// minLevel drops records below its level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/master"
)

func runMaster(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll master", flag.ContinueOnError)
	var nf natsFlags
	nf.register(fs)
	httpAddr := fs.String("http", "127.0.0.1:8080", "address of the Marathon-compatible HTTP API")
	dataDir := fs.String("data-dir", "./.atoll/master", "folder of the durable local store (without --zk)")
	zkURL := fs.String("zk", "", "ZooKeeper election and state, zk://[user:password@]host:port[,host:port...]/path; empty: always lead, state in --data-dir")
	zkSession := fs.Duration("zk-session-timeout", master.DefaultZKSessionTimeout, "ZooKeeper session timeout: how long a leader ZooKeeper stops hearing from keeps its place")
	agentTimeout := fs.Duration("agent-timeout", 15*time.Second, "heartbeat silence after which an agent is unreachable")
	drain := fs.Duration("kill-drain-delay", master.DefaultKillDrainDelay, "how long a serving task stays TASK_KILLING (out of load balancers and DNS) before it gets SIGTERM; negative: no delay")
	launchTimeout := fs.Duration("task-launch-timeout", master.DefaultTaskLaunchTimeout,
		"how long a task may take from staging to running before it is killed and counts as a failure (Marathon's --task_launch_timeout)")
	maxInstances := fs.Int("max-instances-per-app", master.DefaultMaxInstancesPerApp,
		"most instances one app may have: the API refuses more with a 422 (Marathon has no such flag)")
	maxVersions := fs.Int("max-app-versions", master.DefaultMaxAppVersions,
		"how many definitions of each app the master keeps for /v2/apps/{id}/versions and rollback (Marathon's --zk_max_versions)")
	var sec apiSecurityFlags
	sec.register(fs, true)
	hostname := fs.String("hostname", "", "hostname to advertise (default: the system's)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	profiling := fs.Bool("pprof", false, "serve Go's /debug/pprof/ profiles on the API (behind its credentials)")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	if *launchTimeout <= 0 {
		fmt.Fprintf(stderr, "atoll master: --task-launch-timeout is %s, must be positive\n", *launchTimeout)
		return 2
	}
	if *maxInstances < 1 {
		fmt.Fprintf(stderr, "atoll master: --max-instances-per-app is %d, must be 1 or more\n", *maxInstances)
		return 2
	}
	if *maxVersions < 1 {
		fmt.Fprintf(stderr, "atoll master: --max-app-versions is %d, must be 1 or more\n", *maxVersions)
		return 2
	}
	log := newLogger(stderr, *logLevel).With("component", "master")
	security, err := sec.resolve(os.Getenv, log)
	if err != nil {
		fmt.Fprintln(stderr, "atoll master:", err)
		return 2
	}
	if err := serveMaster(ctx, masterOptions{
		nats: nf, httpAddr: *httpAddr, dataDir: *dataDir, agentTimeout: *agentTimeout,
		killDrainDelay: *drain, taskLaunchTimeout: *launchTimeout, security: security, hostname: *hostname,
		zkURL: *zkURL, zkSessionTimeout: *zkSession, maxInstancesPerApp: *maxInstances, profiling: *profiling,
		maxAppVersions: *maxVersions,
	}, log); err != nil {
		fmt.Fprintln(stderr, "atoll master:", err)
		return 1
	}
	return 0
}

type masterOptions struct {
	nats         natsFlags
	httpAddr     string
	dataDir      string
	agentTimeout time.Duration
	// killDrainDelay is master.Config.KillDrainDelay (0: the default).
	killDrainDelay time.Duration
	// taskLaunchTimeout is master.Config.TaskLaunchTimeout (0: the default).
	taskLaunchTimeout time.Duration
	security          apiSecurity
	hostname          string
	// zkURL, if set, elects the leader in ZooKeeper and keeps the state
	// there instead of in dataDir.
	zkURL            string
	zkSessionTimeout time.Duration
	// maxInstancesPerApp is master.Config.MaxInstancesPerApp (0: the
	// default).
	maxInstancesPerApp int
	// maxAppVersions is master.Config.MaxAppVersions (0: the default).
	maxAppVersions int
	profiling      bool // /debug/pprof/ on the API
}

// serveMaster runs one master until ctx ends.
func serveMaster(ctx context.Context, o masterOptions, log *slog.Logger) error {
	cfg := master.Config{
		Subjects: o.nats.subjects(),
		HTTPAddr: o.httpAddr, AgentTimeout: o.agentTimeout,
		KillDrainDelay: o.killDrainDelay, TaskLaunchTimeout: o.taskLaunchTimeout, Hostname: o.hostname, Log: log, Version: version,
		MaxInstancesPerApp: o.maxInstancesPerApp, MaxAppVersions: o.maxAppVersions, Profiling: o.profiling,
		HTTPCredentials: o.security.credentials, HTTPCORSOrigins: o.security.corsOrigins,
		TLS: o.security.tls, PeerTLS: o.security.peerTLS,
	}
	where := []any{"data-dir", o.dataDir}
	if o.zkURL != "" {
		z, err := master.ParseZKURL(o.zkURL)
		if err != nil {
			return err
		}
		z.SessionTimeout = o.zkSessionTimeout
		cfg.ZK = &z
		where = []any{"zk", z.String(), "zk-session-timeout", z.SessionTimeout}
	} else {
		store, err := master.OpenFileStore(o.dataDir, log)
		if err != nil {
			return err
		}
		defer store.Close()
		cfg.Store = store
	}
	ctx, nc, err := o.nats.dial(ctx, "atoll-master", natsauth.RoleMaster, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	cfg.NC = nc
	m, err := master.New(cfg)
	if err != nil {
		return err
	}
	scheme := "http"
	if o.security.tls != nil {
		scheme = "https"
	}
	where = append(where, "http-credentials", orNone(o.security.source))
	if o.security.credentials == "" {
		log.Warn("the HTTP API has no credentials: whoever reaches it reads every app's env and changes the cluster; give --http-credentials-file or " + envHTTPCredentials)
	}
	if len(o.security.corsOrigins) > 0 {
		where = append(where, "cors-origins", strings.Join(o.security.corsOrigins, ","))
	}
	log.Info("master starting", append([]any{"http", scheme + "://" + o.httpAddr, "nats", redact(o.nats.url)}, where...)...)
	return natsCause(ctx, m.Run(ctx))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/atollhq/atoll/master"
)

func runMaster(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll master", flag.ContinueOnError)
	var nf natsFlags
	nf.register(fs)
	httpAddr := fs.String("http", "127.0.0.1:8080", "address of the Marathon-compatible HTTP API")
	dataDir := fs.String("data-dir", "./.atoll/master", "folder of the durable local store")
	agentTimeout := fs.Duration("agent-timeout", 15*time.Second, "heartbeat silence after which an agent is unreachable")
	drain := fs.Duration("kill-drain-delay", master.DefaultKillDrainDelay, "how long a serving task stays TASK_KILLING (out of load balancers and DNS) before it gets SIGTERM; negative: no delay")
	creds := fs.String("http-credentials", "", "user:password required for mutating API calls")
	hostname := fs.String("hostname", "", "hostname to advertise (default: the system's)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	log := newLogger(stderr, *logLevel).With("component", "master")
	if err := serveMaster(ctx, masterOptions{
		nats: nf, httpAddr: *httpAddr, dataDir: *dataDir, agentTimeout: *agentTimeout,
		killDrainDelay: *drain, credentials: *creds, hostname: *hostname,
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
	credentials    string
	hostname       string
}

// serveMaster runs one master until ctx ends.
func serveMaster(ctx context.Context, o masterOptions, log *slog.Logger) error {
	nc, err := o.nats.connect("atoll-master", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	store, err := master.OpenFileStore(o.dataDir, log)
	if err != nil {
		return err
	}
	defer store.Close()
	m, err := master.New(master.Config{
		NC: nc, Subjects: o.nats.subjects(), Store: store,
		HTTPAddr: o.httpAddr, AgentTimeout: o.agentTimeout,
		KillDrainDelay: o.killDrainDelay, HTTPCredentials: o.credentials, Hostname: o.hostname, Log: log, Version: version,
	})
	if err != nil {
		return err
	}
	log.Info("master starting", "http", o.httpAddr, "nats", redact(o.nats.url), "data-dir", o.dataDir)
	return m.Run(ctx)
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/atollhq/atoll/deploy"
	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/embedded"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll dev", flag.ContinueOnError)
	natsAddr := fs.String("nats", "127.0.0.1:4222", "address of the embedded NATS server")
	httpAddr := fs.String("http", "127.0.0.1:8080", "address of the master's API")
	agents := fs.Int("agents", 3, "number of agents (agent-N advertises 127.0.0.N+1)")
	dataDir := fs.String("data-dir", "./.atoll", "folder for the master's store and the agents' work dirs")
	agentTimeout := fs.Duration("agent-timeout", 15*time.Second, "heartbeat silence after which an agent is unreachable")
	demo := fs.Bool("demo", false, "deploy the demo app (deploy/examples/echo.json)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	if *agents < 1 || *agents > 200 {
		fmt.Fprintln(stderr, "atoll dev: --agents must be between 1 and 200")
		return 2
	}
	log := newLogger(stderr, *logLevel)
	if err := dev(ctx, devOptions{
		natsAddr: *natsAddr, httpAddr: *httpAddr, agents: *agents, dataDir: *dataDir,
		agentTimeout: *agentTimeout, demo: *demo,
	}, stdout, log); err != nil {
		fmt.Fprintln(stderr, "atoll dev:", err)
		return 1
	}
	return 0
}

type devOptions struct {
	natsAddr, httpAddr, dataDir string
	agents                      int
	agentTimeout                time.Duration
	demo                        bool
}

// dev runs NATS, a master and the agents in this process until ctx ends,
// then stops them in reverse order: agents kill their tasks first.
func dev(ctx context.Context, o devOptions, stdout io.Writer, log *slog.Logger) error {
	srv, err := embedded.Start(o.natsAddr)
	if err != nil {
		return err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	nf := natsFlags{url: srv.ClientURL(), prefix: events.DefaultPrefix}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, o.agents+1)
	var wg sync.WaitGroup
	masterCtx, stopMaster := context.WithCancel(context.Background())
	defer stopMaster()
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := serveMaster(masterCtx, masterOptions{
			nats: nf, httpAddr: o.httpAddr, dataDir: filepath.Join(o.dataDir, "master"),
			agentTimeout: o.agentTimeout,
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
			nats:        nf,
			hostname:    name,
			advertiseIP: fmt.Sprintf("127.0.0.%d", i+1),
			attributes:  fmt.Sprintf("region:r%d", i),
			ports:       fmt.Sprintf("%d-%d", 31000+(i-1)*1000, 31000+(i-1)*1000+999),
			workDir:     filepath.Join(o.dataDir, name),
			cpus:        2, mem: 2048, disk: 10240,
			heartbeat: time.Second,
		}
		agentsWG.Add(1)
		go func() {
			defer agentsWG.Done()
			if err := serveAgent(ctx, ao, true, log.With("component", "agent", "agent", name)); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}

	api := "http://" + o.httpAddr
	if err := waitHTTP(ctx, api+"/ping", 10*time.Second); err != nil {
		cancel()
		agentsWG.Wait()
		stopMaster()
		wg.Wait()
		return err
	}
	if o.demo {
		if err := deployDemo(ctx, api); err != nil {
			log.Warn("demo app not deployed", "err", err)
		}
	}
	printDevBanner(stdout, o, srv.ClientURL(), api, names)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		cancel()
	}
	fmt.Fprintln(stdout, "\natoll dev: stopping agents and their tasks...")
	agentsWG.Wait()
	stopMaster()
	wg.Wait()
	return runErr
}

func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
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
func deployDemo(ctx context.Context, api string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, api+"/v2/apps", bytes.NewReader(deploy.EchoApp))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusConflict {
		return nil
	}
	var body struct {
		Message string `json:"message"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return fmt.Errorf("POST /v2/apps: %s: %s", resp.Status, body.Message)
}

func printDevBanner(w io.Writer, o devOptions, natsURL, api string, agents []string) {
	fmt.Fprintf(w, `
atoll dev is running (Ctrl-C stops everything, tasks included)

  Marathon API   %[1]s        (/v2/apps, /v2/tasks, /v2/deployments, /master/state)
  NATS           %[2]s
  agents         %[3]d: %[4]v on 127.0.0.2..127.0.0.%[5]d, regions r1..r%[3]d
  data           %[6]s

Try:
  curl -s %[1]s/v2/apps | jq
  ./bin/atoll app list
  ./bin/atoll task list
  ./bin/atoll agents
  ./bin/atoll app scale /demo/echo 2
  ./bin/atoll app deploy -f deploy/examples/echo.json
  curl -s http://127.0.0.2:31000/      (a demo task answers with its task id)
`, api, natsURL, o.agents, agents, o.agents+1, o.dataDir)
}

// Command master measures one real `atoll master` (local store) as a
// cluster grows (issue 13): N simulated agents in this process, each on
// its own agent credential, behave like the real agent on the wire (they
// register, heartbeat every second with their task reports, ack every
// launch at once and report TASK_RUNNING), and apps of --instances tasks
// are added through POST /v2/apps in batches of --apps-per-batch apps up
// to --max-tasks. After each batch it prints a row: POST latency, how
// long the batch took to be all running, GET /v2/apps with tasks and
// /master/state latency and size, the master's RSS and its reconcile
// passes. A batch that is not all running within --batch-timeout ends the
// run with the tasks' states. It prints figures and asserts nothing. Run
// with `make bench` or `go run ./bench/master --atoll bin/atoll`.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/freeport"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/natsenv"
)

type options struct {
	atoll        string
	agents       int
	appsPerBatch int
	instances    int
	maxTasks     int
	batchTimeout time.Duration
	natsTLS      bool
	keepLog      string
}

func main() {
	var o options
	flag.StringVar(&o.atoll, "atoll", "bin/atoll", "atoll binary")
	flag.IntVar(&o.agents, "agents", 100, "simulated agents")
	flag.IntVar(&o.appsPerBatch, "apps-per-batch", 100, "apps added per batch (one POST /v2/apps each)")
	flag.IntVar(&o.instances, "instances", 10, "instances per app")
	flag.IntVar(&o.maxTasks, "max-tasks", 10000, "stop once this many tasks are wanted")
	flag.DurationVar(&o.batchTimeout, "batch-timeout", 3*time.Minute, "how long a batch may take to be all running before the run stops")
	flag.BoolVar(&o.natsTLS, "nats-tls", true, "TLS on NATS (authentication is always on)")
	flag.StringVar(&o.keepLog, "master-log", "", "copy the master's log here (default: only its counts are printed)")
	flag.Parse()
	if o.agents < 1 || o.appsPerBatch < 1 || o.instances < 1 || o.maxTasks < o.instances || o.batchTimeout <= 0 {
		fmt.Fprintln(os.Stderr, "bench/master: --agents, --apps-per-batch, --instances and --batch-timeout must be positive and --max-tasks at least --instances")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/master:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "atoll-bench-master")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	env, err := natsenv.Start(filepath.Join(dir, "auth"), o.natsTLS)
	if err != nil {
		return err
	}
	defer env.Shutdown()

	m, err := startMaster(o.atoll, env, dir)
	if err != nil {
		return err
	}
	defer func() {
		m.stop()
		m.printLogCounts()
		if o.keepLog != "" {
			if data, err := os.ReadFile(m.logPath); err == nil {
				if err := os.WriteFile(o.keepLog, data, 0o644); err != nil {
					fmt.Fprintln(os.Stderr, "bench/master: keep log:", err)
				}
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := m.waitServing(ctx, 30*time.Second); err != nil {
		return err
	}

	c := &counters{}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	res := events.Resources{Cpus: 64, Mem: 256 * 1024, Disk: 1024 * 1024, Ports: []events.PortRange{{Begin: 31000, End: 41000}}}
	errs := make(chan error, o.agents)
	for i := range o.agents {
		node := "sim-agent-" + strconv.Itoa(i)
		nc, err := env.Connect(natsauth.RoleAgent, node)
		if err != nil {
			return err
		}
		a := newSimAgent(nc, node, res, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer nc.Close()
			if err := a.run(ctx); err != nil {
				errs <- err
			}
		}()
	}
	start := time.Now()
	if err := m.waitAgents(ctx, o.agents, 60*time.Second, errs); err != nil {
		return err
	}
	fmt.Printf("bench/master: %d simulated agents registered in %s; apps of %d instances (cpus 0.01, mem 1, one port), %d apps per batch, up to %d tasks; NATS TLS %v\n\n",
		o.agents, time.Since(start).Round(time.Millisecond), o.instances, o.appsPerBatch, o.maxTasks, o.natsTLS)
	fmt.Println("| tasks | POST /v2/apps p50 / p99 | batch → all running | GET /v2/apps?embed=apps.tasks | GET /master/state | master RSS | reconcile passes (mean) | agents: heartbeats unanswered, kills of unknown tasks |")
	fmt.Println("|---|---|---|---|---|---|---|---|")

	app := 0
	prev, err := m.api.metrics(ctx)
	if err != nil {
		return err
	}
	for app*o.instances < o.maxTasks {
		r, err := runBatch(ctx, m, o, &app, prev, c)
		if r.row != "" {
			fmt.Println(r.row)
		}
		if err != nil {
			fmt.Println()
			fmt.Println(c.String())
			if errors.Is(err, errBatchTimeout) {
				// A finding, not a failure of the benchmark.
				fmt.Println("stopped:", err)
				return nil
			}
			return err
		}
		prev = r.metrics
	}
	fmt.Println()
	fmt.Println(c.String())
	return nil
}

// fleetCounts are a moment's values of the counters the rows show.
type fleetCounts struct{ heartbeatFails, killUnknown int64 }

func (c *counters) snapshot() fleetCounts {
	return fleetCounts{heartbeatFails: c.heartbeatFails.Load(), killUnknown: c.killUnknown.Load()}
}

func (c *counters) String() string {
	return fmt.Sprintf("simulated agents: %d launches (%d already running), %d kills (%d of unknown tasks), %d registrations, %d asked to register again, %d heartbeats unanswered, %d status retries",
		c.launches.Load(), c.launchDup.Load(), c.kills.Load(), c.killUnknown.Load(),
		c.registrations.Load(), c.reregisterAsks.Load(), c.heartbeatFails.Load(), c.statusRetries.Load())
}

// randomSecret is a password for the master's HTTP API.
func randomSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// master is the `atoll master` process under test.
type master struct {
	cmd     *exec.Cmd
	api     *api
	logPath string
	logFile *os.File
	done    chan struct{}
	waitErr error
}

func startMaster(atoll string, env *natsenv.Env, dir string) (*master, error) {
	natsArgs, err := env.Args(natsauth.RoleMaster, "bench-master")
	if err != nil {
		return nil, err
	}
	port, err := freeport.Reserve("127.0.0.1", false)
	if err != nil {
		return nil, err
	}
	pass, err := randomSecret()
	if err != nil {
		return nil, err
	}
	credsFile := filepath.Join(dir, "http-credentials")
	if err := os.WriteFile(credsFile, []byte("bench:"+pass+"\n"), 0o600); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	logPath := filepath.Join(dir, "master.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(atoll, append(append([]string{"master"}, natsArgs...),
		"--http", addr, "--data-dir", filepath.Join(dir, "data"), "--http-credentials-file", credsFile)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start atoll master: %w", err)
	}
	m := &master{cmd: cmd, logPath: logPath, logFile: logFile, done: make(chan struct{}),
		api: &api{base: "http://" + addr, user: "bench", pass: pass, client: &http.Client{Timeout: 5 * time.Minute}}}
	go func() { m.waitErr = cmd.Wait(); close(m.done) }()
	return m, nil
}

func (m *master) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(20 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	m.logFile.Close()
}

// exited is an error if the master is no longer running.
func (m *master) exited() error {
	select {
	case <-m.done:
		return fmt.Errorf("atoll master exited: %v (log: %s)", m.waitErr, lastLines(m.logPath, 20))
	default:
		return nil
	}
}

func (m *master) waitServing(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if err := m.exited(); err != nil {
			return err
		}
		_, _, _, err := m.api.call(ctx, http.MethodGet, "/v2/info", nil)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("master not serving after %s: %w", limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (m *master) waitAgents(ctx context.Context, n int, limit time.Duration, errs <-chan error) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case err := <-errs:
			return err
		default:
		}
		if err := m.exited(); err != nil {
			return err
		}
		mt, err := m.api.metrics(ctx)
		if err == nil && int(mt.agents[string(events.AgentActive)]) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %v of %d agents active after %s (err %v)", mt.agents[string(events.AgentActive)], n, limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var errBatchTimeout = errors.New("batch not all running in time")

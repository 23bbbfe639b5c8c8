// Command scale measures one real `atoll master` as a cluster grows to
// 100,000 tasks (issue 13). A fleet of simulated agents (internal/simagent:
// in this process, each on its own agent credential over a real NATS
// server with authentication, behaving like the real agent on the wire)
// registers with the master, which runs as a subprocess on its local store
// or, with --store zk, on a ZooKeeper (internal/zktest's). Apps of
// --instances tasks are POSTed in batches of --apps-per-batch until each of
// --sizes is wanted and running; at each size it prints POST /v2/apps p50
// and p99, tasks launched per second, GET /v2/apps with and without
// embed=apps.tasks and /master/state latency and size, the master's RSS,
// event → sidecar applied p99 (an events.Follower here on a sidecar
// credential, from the leader's event timestamp), agents the master
// declared unreachable while they heartbeated, tasks killed as unknown (the
// master's counters and the agents' own count of kills of tasks whose
// launch they acked), and leader restart → serving (kill -9, start again,
// until GET /v2/apps counts every task running and every agent is active).
// Then it times a --scale-up of one app to that many instances. Issue 13's
// targets are printed beside the figures; nothing is asserted.
//
// A batch not all running within --batch-timeout ends that store's run
// with the tasks' states (today's master stalls near 4,000 tasks).
//
// The full run: go run ./bench/scale --atoll bin/atoll
// (1,000 agents, 10k/30k/100k tasks, local store then ZooKeeper, a
// 10,000-instance scale-up). make bench runs smaller sizes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/natsbus"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/natsenv"
	"github.com/atollhq/atoll/internal/simagent"
	"github.com/atollhq/atoll/internal/zktest"
)

type options struct {
	atoll           string
	agents          int
	sizes           []int
	instances       int
	appsPerBatch    int
	postConcurrency int
	batchTimeout    time.Duration
	readTimeout     time.Duration
	restartTimeout  time.Duration
	stores          []string
	scaleUp         int
	restart         bool
	natsTLS         bool
	launchDelay     time.Duration
	keepLogs        string
	heapProfiles    string
}

func main() {
	var o options
	var sizes, stores string
	flag.StringVar(&o.atoll, "atoll", "bin/atoll", "atoll binary")
	flag.IntVar(&o.agents, "agents", 1000, "simulated agents")
	flag.StringVar(&sizes, "sizes", "10000,30000,100000", `cluster sizes in tasks, rising, comma-separated; "none": no growth (only the scale-up)`)
	flag.IntVar(&o.instances, "instances", 10, "instances per app")
	flag.IntVar(&o.appsPerBatch, "apps-per-batch", 100, "apps POSTed per batch; the batch must be all running before the next")
	flag.IntVar(&o.postConcurrency, "post-concurrency", 4, "POST /v2/apps calls in flight at once")
	flag.DurationVar(&o.batchTimeout, "batch-timeout", 3*time.Minute, "how long a batch may take to be all running before that store's run stops")
	flag.DurationVar(&o.readTimeout, "read-timeout", 3*time.Minute, "how long the reads at a size may take together")
	flag.DurationVar(&o.restartTimeout, "restart-timeout", 5*time.Minute, "how long a restarted leader may take to serve every task")
	flag.StringVar(&stores, "store", "local,zk", "the master's stores to run, in order: local, zk")
	flag.IntVar(&o.scaleUp, "scale-up", 10000, "after the growth, scale one app to this many instances and time it (0: no scale-up)")
	flag.BoolVar(&o.restart, "restart", true, "restart the leader at each size")
	flag.BoolVar(&o.natsTLS, "nats-tls", true, "TLS on NATS (authentication is always on)")
	flag.DurationVar(&o.launchDelay, "launch-delay", 0, "how long a simulated agent takes to ack a launch")
	flag.StringVar(&o.keepLogs, "master-log", "", "copy the master's logs into this folder (default: only counts of notable lines are printed)")
	flag.StringVar(&o.heapProfiles, "heap-profiles", "", "run the master with --pprof and save its heap profile (after a GC) at each size into this folder, for `go tool pprof`")
	flag.Parse()
	var err error
	if o.sizes, err = parseSizes(sizes); err == nil {
		o.stores, err = parseStores(stores)
	}
	if err == nil && (o.agents < 1 || o.instances < 1 || o.appsPerBatch < 1 || o.postConcurrency < 1 || o.batchTimeout <= 0 ||
		o.readTimeout <= 0 || o.restartTimeout <= 0 || o.scaleUp < 0 || o.launchDelay < 0) {
		err = errors.New("--agents, --instances, --apps-per-batch, --post-concurrency and the timeouts must be positive, --scale-up and --launch-delay not negative")
	}
	if err == nil && len(o.sizes) == 0 && o.scaleUp == 0 {
		err = errors.New(`--sizes none and --scale-up 0: nothing to measure`)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/scale:", err)
		os.Exit(2)
	}
	for _, store := range o.stores {
		if err := runStore(o, store); err != nil {
			fmt.Fprintf(os.Stderr, "bench/scale (%s store): %v\n", store, err)
			os.Exit(1)
		}
	}
}

func parseSizes(s string) ([]int, error) {
	if s == "none" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || (len(out) > 0 && n <= out[len(out)-1]) {
			return nil, fmt.Errorf("--sizes %q: want rising positive task counts, comma-separated, or none", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseStores(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		switch f = strings.TrimSpace(f); f {
		case "local", "zk":
			out = append(out, f)
		default:
			return nil, fmt.Errorf("--store %q: want local, zk or both, comma-separated", s)
		}
	}
	return out, nil
}

// runStore runs the whole growth against a master on one store.
func runStore(o options, store string) error {
	dir, err := os.MkdirTemp("", "atoll-bench-scale")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env, err := natsenv.Start(filepath.Join(dir, "auth"), o.natsTLS)
	if err != nil {
		return err
	}
	defer env.Shutdown()
	mc := masterConfig{atoll: o.atoll, dir: dir, maxInstances: max(1000, o.scaleUp), pprof: o.heapProfiles != ""}
	if store == "zk" {
		// One znode per task: 100,000 of them outgrow the tests' heap.
		zk, err := zktest.LaunchOpts(filepath.Join(dir, "zk"), 1, zktest.Options{HeapMB: 1024})
		if err != nil {
			return err
		}
		defer zk.Close()
		mc.zkURL = "zk://" + zk.Connect + "/atoll-bench"
	}
	m, err := startMaster(env, mc)
	if err != nil {
		return err
	}
	defer func() {
		m.stop(syscall.SIGTERM)
		printLogCounts(m.logPath)
		keepLog(o.keepLogs, m.logPath, store)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := m.waitLeading(ctx, time.Minute); err != nil {
		return err
	}

	start := time.Now()
	fleet, err := simagent.StartFleet(ctx, func(node string) (*nats.Conn, error) {
		return env.Connect(natsauth.RoleAgent, node)
	}, o.agents, "sim-agent-", simagent.Config{
		Resources:   events.Resources{Cpus: 64, Mem: 256 * 1024, Disk: 1024 * 1024, Ports: []events.PortRange{{Begin: 31000, End: 41000}}},
		LaunchDelay: o.launchDelay,
	})
	if fleet != nil {
		defer fleet.Stop()
	}
	if err != nil {
		return err
	}
	if err := m.waitAgents(ctx, o.agents, 3*time.Minute, fleet.Err); err != nil {
		return err
	}
	registered := time.Since(start)

	snc, err := env.Connect(natsauth.RoleSidecar, "bench-sidecar")
	if err != nil {
		return err
	}
	defer snc.Close()
	sc := newSidecar(&natsbus.Source{NC: snc})
	done := make(chan struct{})
	go func() { defer close(done); sc.run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(time.Minute); !sc.f.Synced(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("the bench's sidecar follower not synced after 1m")
		}
	}

	c := &cluster{o: o, store: store, m: m, fleet: fleet, sc: sc}
	if c.last, err = m.api.metrics(ctx); err != nil {
		return err
	}
	fmt.Printf("bench/scale, %s store: %d simulated agents (64 cpus, 256 GB, ports 31000-41000; launch ack after %s) registered in %s; "+
		"apps of %d instances (cpus 0.01, mem 1, one port), %d apps per batch, %d POSTs in flight; NATS auth + TLS %v; batch timeout %s\n\n",
		storeName(store), o.agents, o.launchDelay, registered.Round(time.Millisecond), o.instances, o.appsPerBatch, o.postConcurrency, o.natsTLS, o.batchTimeout)

	var rows []sizeResult
	stopped := false
	for _, size := range o.sizes {
		r := c.growTo(ctx, size)
		if r.collapsed == "" && o.restart {
			c.restart(ctx, &r)
		}
		printSize(store, o, r)
		rows = append(rows, r)
		if r.collapsed != "" {
			stopped = true
			break
		}
	}
	var su *scaleUpResult
	if o.scaleUp > 0 && !stopped {
		r := c.scaleUp(ctx, o.scaleUp)
		printScaleUp(store, r)
		su = &r
	}
	fmt.Printf("simulated agents over the run: %s\n", fleet.Counters.Snapshot())
	fmt.Printf("agents the master declared unreachable over the run (all of them heartbeating): %d\n\n", sc.everUnreachable())
	printSummary(store, o, rows, su)
	return nil
}

func storeName(store string) string {
	if store == "zk" {
		return "ZooKeeper"
	}
	return "local"
}

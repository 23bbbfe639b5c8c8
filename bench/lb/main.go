// Command lb benchmarks atoll's HAProxy sidecar (DESIGN.md §6, issue "LB
// sidecar"): render and `haproxy -c` times at 1,000 and 10,000 apps, event
// → serving latency through the real pipeline (embedded NATS, the master's
// Publisher and snapshot server, then `atoll lb` in its own process — or,
// with -inline, events.Follower, lbsync.Syncer and lbsync.HAProxyApplier in
// this one — running haproxy) for a task change and for a new app, and
// failed requests and reloads under wrk while an app scales.
// Everything listens on 127.0.0.1. It prints the figures and checks them
// against the targets (PASS/MISS; a MISS does not fail the run).
// Run with `make bench` or `go run ./bench/lb` (needs haproxy and wrk:
// `make bench-deps`).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	haproxy, wrk string
	atoll        string // the atoll binary whose `atoll lb` is measured
	inline       bool   // run the sidecar's parts in this process instead
	renderSizes  []int
	renderRuns   int
	apps, perApp int
	fleet        int
	taskChanges  int
	settle       time.Duration
	newApps      int
	minReload    time.Duration
	poll         time.Duration
	portBase     int
	scale        scaleOpts
	verbose      bool
	staleApps    int
	natsTLS      bool // TLS between the leader, NATS and the sidecar
}

func main() {
	var o options
	sizes := flag.String("render-sizes", "1000,10000", "app counts (× tasks-per-app) for the render and haproxy -c figures")
	flag.StringVar(&o.haproxy, "haproxy", "haproxy", "the haproxy binary (2.6, master-worker)")
	flag.StringVar(&o.wrk, "wrk", "wrk", "the wrk binary")
	flag.StringVar(&o.atoll, "atoll", "bin/atoll", "the atoll binary whose `atoll lb` is measured (make build)")
	flag.BoolVar(&o.inline, "inline", false, "run the sidecar's parts inside this process instead of `atoll lb` (splits latencies into steps; shares this process's GC)")
	flag.IntVar(&o.renderRuns, "render-runs", 5, "runs of each render and check")
	flag.IntVar(&o.apps, "apps", 1000, "apps in the cluster the sidecar follows")
	flag.IntVar(&o.perApp, "tasks-per-app", 3, "tasks per app")
	flag.IntVar(&o.fleet, "backends", 16, "HTTP backends the apps' tasks point at")
	flag.IntVar(&o.taskChanges, "task-changes", 200, "task changes timed (each on another app)")
	flag.DurationVar(&o.settle, "settle", 50*time.Millisecond, "pause after each task change (lets its second event land)")
	flag.IntVar(&o.newApps, "new-apps", 30, "new apps timed (a reload each)")
	flag.DurationVar(&o.minReload, "min-reload-interval", time.Second, "the Syncer's reload rate limit (atoll lb's default)")
	flag.DurationVar(&o.poll, "poll", 500*time.Microsecond, "pause between polling rounds through HAProxy")
	flag.IntVar(&o.portBase, "port-base", 20000, "service ports are the free ports from here up")
	flag.IntVar(&o.scale.events, "scale-events", 100, "scale events under wrk")
	flag.DurationVar(&o.scale.every, "scale-every", 100*time.Millisecond, "time between scale events")
	flag.IntVar(&o.scale.maxTasks, "scale-max-tasks", 8, "the scaled app runs 1..this many tasks (8 fills one slot step)")
	flag.IntVar(&o.scale.threads, "wrk-threads", 2, "wrk -t")
	flag.IntVar(&o.scale.conns, "wrk-conns", 32, "wrk -c")
	flag.IntVar(&o.staleApps, "keep-alive-moves", 20, "task moves checked with a keep-alive client (stale pooled connections)")
	flag.BoolVar(&o.verbose, "v", false, "print each new app's timeline to stderr")
	flag.BoolVar(&o.natsTLS, "nats-tls", true, "TLS on NATS (authentication is always on)")
	flag.Parse()
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench/lb: -render-sizes: %q is not an app count\n", s)
			os.Exit(2)
		}
		o.renderSizes = append(o.renderSizes, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/lb:", err)
		os.Exit(1)
	}
}

// lookTools resolves haproxy and wrk, or says how to install them.
func lookTools(o *options) error {
	var missing []string
	bins := []*string{&o.haproxy, &o.wrk}
	if !o.inline {
		bins = append(bins, &o.atoll)
	}
	for _, bin := range bins {
		path, err := exec.LookPath(*bin)
		if err != nil {
			missing = append(missing, *bin)
			continue
		}
		*bin = path
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s not found: run `make build` for atoll, `make bench-deps` (as root) for the tools", strings.Join(missing, " and "))
	}
	return nil
}

func run(ctx context.Context, o options) error {
	if err := lookTools(&o); err != nil {
		return err
	}
	if o.scale.maxTasks < 2 || o.fleet < o.perApp+1 {
		return fmt.Errorf("need -scale-max-tasks ≥ 2 and -backends > -tasks-per-app")
	}
	o.scale.wrkBin, o.scale.minReload = o.wrk, o.minReload
	version, _ := exec.Command(o.haproxy, "-v").Output()
	fmt.Printf("bench/lb: %s, %d CPUs (GOMAXPROCS %d), %s, load average %s\n", strings.SplitN(string(version), "\n", 2)[0],
		runtime.NumCPU(), runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.RFC3339), loadAvg())

	dir, err := os.MkdirTemp("", "atoll-bench-lb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	var res results
	for _, n := range o.renderSizes {
		start := time.Now()
		f, err := measureRender(ctx, o.haproxy, dir, n, o.perApp, o.renderRuns)
		if err != nil {
			return err
		}
		if f.renderErrors > 0 {
			return fmt.Errorf("render of %d apps left %d out", n, f.renderErrors)
		}
		res.renders = append(res.renders, f)
		fmt.Printf("render figures at %d apps in %s\n", n, time.Since(start).Round(time.Millisecond))
	}
	if err := pipeline(ctx, o, dir, &res); err != nil {
		return err
	}
	fmt.Printf("load average at the end: %s (other work on the machine skews every figure)\n", loadAvg())
	res.print(os.Stdout)
	if missed := printTargets(os.Stdout, res.targets()); missed > 0 {
		fmt.Printf("\n%d target(s) missed\n", missed)
	}
	return nil
}

// loadAvg is the 1, 5 and 15 minute load averages, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

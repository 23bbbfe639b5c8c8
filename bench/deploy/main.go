// Command deploy benchmarks rolling deploys end to end (issue 5): it runs
// `atoll dev` (master, agents, DNS sidecar, `atoll lb` with a real HAProxy)
// on loopback, and for each size creates an app of `atoll echo` tasks with
// an HTTP health check, puts it under `wrk`, changes its env (a rolling
// deploy, upgradeStrategy 1/1) and prints the deploy's duration, wrk's
// failed requests and HAProxy's reloads during the deploy. It prints
// figures and asserts nothing but its own preconditions. Run with
// `make bench` or `go run ./bench/deploy --atoll bin/atoll`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	atoll    string
	sizes    []int
	agents   int
	timeout  time.Duration // each wait: instances healthy, deploy done, app gone
	settle   time.Duration // wrk before the PUT and after the deploy
	threads  int
	conns    int
	keepLogs bool
	hcDelay  time.Duration // the health check's delaySeconds
	mode     string        // HAPROXY_0_MODE, if not ""
}

func main() {
	var o options
	sizes := flag.String("sizes", "4,20,100", "instance counts, comma separated, one rolling deploy each")
	flag.StringVar(&o.atoll, "atoll", "bin/atoll", "atoll binary")
	flag.IntVar(&o.agents, "agents", 4, "agents of `atoll dev` (each: 2 cpus, 2048 MB, 1000 ports)")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "limit of each wait (instances healthy and served, deploy done, app deleted)")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "wrk runs this long before the deploy and after it")
	flag.IntVar(&o.threads, "threads", 2, "wrk threads")
	flag.IntVar(&o.conns, "conns", 32, "wrk connections (0: no wrk)")
	flag.DurationVar(&o.hcDelay, "hc-delay", 0, "the health check's delaySeconds (Marathon's default is 15 s)")
	flag.StringVar(&o.mode, "mode", "", `HAPROXY_0_MODE label of the app ("": none, HAProxy's tcp mode)`)
	flag.BoolVar(&o.keepLogs, "keep", false, "keep the data dir and atoll dev's log even when nothing failed")
	flag.Parse()
	var err error
	if o.sizes, err = parseSizes(*sizes); err != nil {
		fmt.Fprintln(os.Stderr, "bench/deploy:", err)
		os.Exit(2)
	}
	for _, bin := range []string{"wrk", "haproxy"} {
		if _, err := exec.LookPath(bin); err != nil {
			fmt.Fprintf(os.Stderr, "bench/deploy: %s not found: run make bench-deps\n", bin)
			os.Exit(1)
		}
	}
	if _, err := os.Stat(o.atoll); err != nil {
		fmt.Fprintf(os.Stderr, "bench/deploy: %v (run make build)\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/deploy:", err)
		stop()
		os.Exit(1)
	}
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--sizes %q: %q is not a positive count", s, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("--sizes is empty")
	}
	return out, nil
}

// run starts `atoll dev`, deploys each size in turn and prints the table;
// `atoll dev` is stopped, and its tasks checked gone, whatever happens.
func run(ctx context.Context, o options) (err error) {
	dev, err := startDev(ctx, o.atoll, o.agents)
	if err != nil {
		return err
	}
	var rows []result
	defer func() {
		if serr := dev.stop(); serr != nil {
			err = errors.Join(err, serr)
		}
		failed := err != nil
		for _, r := range rows {
			failed = failed || r.wrk.failed() > 0 || !r.newOnly
		}
		dev.cleanup(failed || o.keepLogs)
	}()
	fmt.Printf("atoll dev: API %s, %d agents, data %s\n", dev.api.base, o.agents, dev.dir)
	fmt.Printf("machine: %d cores, load average %s\n", numCPU(), loadAvg())
	var failed []string
	for _, n := range o.sizes {
		r, err := deployOnce(ctx, dev, o, n)
		if err != nil {
			// The sizes after a failed one run too: a stalled deploy
			// need not hide the others' figures.
			fmt.Printf("\n%d instances: FAILED: %v\n  %s\n", n, err, dev.warnings())
			failed = append(failed, fmt.Sprintf("%d instances: %v", n, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		rows = append(rows, r)
		r.printDetail(os.Stdout)
		fmt.Println(" ", dev.warnings())
	}
	printTable(os.Stdout, o, rows, failed)
	fmt.Printf("\nload average at the end: %s\n", loadAvg())
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d deploys failed", len(failed), len(o.sizes))
	}
	return nil
}

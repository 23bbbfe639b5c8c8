// Command dns benchmarks atoll's DNS sidecar against knotd on the same
// machine, same records, same queries (DESIGN.md §9, issue "DNS sidecar").
// It prints figures and asserts nothing. Run with `make bench` or
// `go run ./bench/dns --atoll bin/atoll` (needs dnsperf, knotd, taskset).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/atollhq/atoll/bench/internal/leader"
	"github.com/atollhq/atoll/internal/freeport"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/natsenv"
)

func main() {
	atoll := flag.String("atoll", "bin/atoll", "atoll binary")
	apps := flag.Int("apps", 10000, "apps in the synthetic cluster")
	perApp := flag.Int("tasks-per-app", 3, "tasks per app")
	duration := flag.Duration("duration", 10*time.Second, "dnsperf run length")
	changes := flag.Int("changes", 1000, "changes for the propagation measurement")
	heapTasks := flag.Int("heap-tasks", 50000, "tasks for the heap measurement")
	serverCore := flag.String("server-core", "1", "core the DNS servers are pinned to")
	loadCore := flag.String("load-core", "0", "core dnsperf is pinned to")
	natsTLS := flag.Bool("nats-tls", true, "TLS on NATS (authentication is always on)")
	flag.Parse()
	if err := run(*atoll, *apps, *perApp, *duration, *changes, *heapTasks, *serverCore, *loadCore, *natsTLS); err != nil {
		fmt.Fprintln(os.Stderr, "bench/dns:", err)
		os.Exit(1)
	}
}

// freePort is a loopback port free for UDP and TCP (DNS listens on both).
func freePort() int {
	p, err := freeport.Reserve("127.0.0.1", true)
	if err != nil {
		panic(err)
	}
	return p
}

func run(atoll string, apps, perApp int, duration time.Duration, changes, heapTasks int, serverCore, loadCore string, natsTLS bool) error {
	dir, err := os.MkdirTemp("", "atoll-bench-dns")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	env, err := natsenv.Start(filepath.Join(dir, "auth"), natsTLS)
	if err != nil {
		return err
	}
	defer env.Shutdown()
	nc, err := env.Connect(natsauth.RoleMaster, "bench-leader")
	if err != nil {
		return err
	}
	defer nc.Close()
	l, err := leader.New(nc)
	if err != nil {
		return err
	}
	defer l.Close()
	tickCtx, stopTicks := context.WithCancel(context.Background())
	defer stopTicks()
	go l.Tick(tickCtx)

	dnsPort, httpPort := freePort(), freePort()
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", dnsPort)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	natsArgs, err := env.Args(natsauth.RoleSidecar, "bench")
	if err != nil {
		return err
	}
	sidecar := exec.Command("taskset", append(append([]string{"-c", serverCore, atoll, "dns"}, natsArgs...),
		"--dns", dnsAddr, "--http", httpAddr, "--pprof", "--resolvers", "127.0.0.1:9", "--dns-sockets", "1")...)
	sidecar.Env = append(os.Environ(), "GOMAXPROCS=1")
	sidecar.Stderr = os.Stderr
	if err := sidecar.Start(); err != nil {
		return fmt.Errorf("start atoll dns: %w", err)
	}
	defer func() { _ = sidecar.Process.Signal(syscall.SIGTERM); _ = sidecar.Wait() }()

	start := time.Now()
	if err := loadCluster(l, 0, apps, perApp); err != nil {
		return err
	}
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	if _, err := waitA(c, dnsAddr, taskName(apps-1)+".marathon.mesos", perApp, time.Now().Add(60*time.Second)); err != nil {
		return fmt.Errorf("cluster never loaded: %w", err)
	}
	fmt.Printf("loaded %d apps x %d tasks through NATS into the sidecar in %s\n", apps, perApp, time.Since(start).Round(time.Millisecond))

	queries, nq, err := writeQueries(dir, apps)
	if err != nil {
		return err
	}
	atollPerf, err := runDNSPerf(loadCore, dnsPort, queries, duration)
	if err != nil {
		return fmt.Errorf("atoll: %w", err)
	}

	zone, records, err := exportZone(httpAddr, dir)
	if err != nil {
		return err
	}
	knotPort := freePort()
	knot, err := startKnot(serverCore, dir, zone, knotPort)
	if err != nil {
		return err
	}
	defer func() { _ = knot.Process.Signal(syscall.SIGTERM); _ = knot.Wait() }()
	if _, err := waitA(c, fmt.Sprintf("127.0.0.1:%d", knotPort), taskName(apps-1)+".marathon.mesos", perApp, time.Now().Add(30*time.Second)); err != nil {
		return fmt.Errorf("knotd never served the zone: %w", err)
	}
	knotPerf, err := runDNSPerf(loadCore, knotPort, queries, duration)
	if err != nil {
		return fmt.Errorf("knotd: %w", err)
	}

	lat, err := propagation(l, dnsAddr, apps, perApp, changes)
	if err != nil {
		return err
	}
	zoneRecs, err := zoneRecords(httpAddr)
	if err != nil {
		return err
	}

	moreApps := (heapTasks+perApp-1)/perApp - apps
	if moreApps > 0 {
		if err := loadCluster(l, apps, apps+moreApps, perApp); err != nil {
			return err
		}
		if _, err := waitA(c, dnsAddr, taskName(apps+moreApps-1)+".marathon.mesos", perApp, time.Now().Add(60*time.Second)); err != nil {
			return err
		}
	}
	heap, err := heapAfterGC(httpAddr)
	if err != nil {
		return err
	}
	heapRecords, err := zoneRecords(httpAddr)
	if err != nil {
		return err
	}
	if path := os.Getenv("BENCH_HEAP_PROFILE"); path != "" {
		if err := saveHeapProfile(httpAddr, path); err != nil {
			return err
		}
	}

	fmt.Printf("\n%d queries in the file (A + SRV, 10%% NXDOMAIN), %d records exported to knotd, dnsperf -c 4 -T 1 -l %s, servers pinned to core %s (GOMAXPROCS=1), dnsperf to core %s\n\n",
		nq, records, duration, serverCore, loadCore)
	fmt.Printf("| server | qps | avg latency | p99 latency | lost |\n|---|---|---|---|---|\n")
	fmt.Printf("| atoll dns | %.0f | %.3f ms | %.3f ms | %s |\n", atollPerf.qps, atollPerf.avgMs, atollPerf.p99Ms, atollPerf.lost)
	fmt.Printf("| knotd (1 UDP worker) | %.0f | %.3f ms | %.3f ms | %s |\n", knotPerf.qps, knotPerf.avgMs, knotPerf.p99Ms, knotPerf.lost)
	fmt.Printf("\natoll / knotd qps ratio: %.2f\n", atollPerf.qps/knotPerf.qps)
	fmt.Printf("propagation (event published -> answer changed) over %d changes at %d tasks: p50 %s, p99 %s, max %s\n",
		len(lat), apps*perApp, lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	fmt.Printf("records atoll dns serves at %d tasks: %d (all name families)\n", apps*perApp, zoneRecs)
	fmt.Printf("sidecar heap after GC at %d tasks (%d records): %.1f MB\n", (apps+max(moreApps, 0))*perApp, heapRecords, float64(heap)/(1<<20))
	return nil
}

var reZoneRecords = regexp.MustCompile(`(?m)^atoll_dns_zone_records (\S+)$`)

// zoneRecords reads how many records the sidecar's zone holds, from its
// /metrics.
func zoneRecords(httpAddr string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("zone records: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("zone records: %w", err)
	}
	m := reZoneRecords.FindSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("zone records: no atoll_dns_zone_records in /metrics (status %s)", resp.Status)
	}
	f, err := strconv.ParseFloat(string(m[1]), 64)
	return int(f), err
}

var reHeapAlloc = regexp.MustCompile(`# HeapAlloc = (\d+)`)

// heapAfterGC reads the sidecar's live heap from its pprof endpoint, which
// runs a GC first (gc=1).
func heapAfterGC(httpAddr string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/debug/pprof/heap?gc=1&debug=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("heap profile: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := reHeapAlloc.FindStringSubmatch(sc.Text()); m != nil {
			return strconv.ParseUint(m[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("heap profile: no HeapAlloc line (status %s)", resp.Status)
}

// saveHeapProfile writes the sidecar's heap profile (after a GC) to path,
// for `go tool pprof`.
func saveHeapProfile(httpAddr, path string) error {
	resp, err := http.Get("http://" + httpAddr + "/debug/pprof/heap?gc=1")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// writeQueries writes dnsperf's query file: for every app its A and SRV
// name, and 10% names that do not exist, shuffled the same way every run.
func writeQueries(dir string, apps int) (string, int, error) {
	var lines []string
	for i := 0; i < apps; i++ {
		lines = append(lines, taskName(i)+".marathon.mesos A", "_"+taskName(i)+"._tcp.marathon.mesos SRV")
	}
	for i := 0; i < len(lines)/9; i++ {
		lines = append(lines, fmt.Sprintf("missing%06d.marathon.mesos A", i))
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	path := filepath.Join(dir, "queries.txt")
	return path, len(lines), os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// perf is what one dnsperf run measured.
type perf struct {
	qps, avgMs, p99Ms float64
	lost              string
}

var (
	reQPS  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	reAvg  = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)`)
	reLost = regexp.MustCompile(`Queries lost:\s+(\S+ \(\S+\))`)
)

// runDNSPerf loads the server at port for d on the given core, as the
// reference figures of ENVIRONMENT.md were taken (-c 4 -T 1), then a short
// verbose run for the latency distribution.
func runDNSPerf(core string, port int, queries string, d time.Duration) (perf, error) {
	args := []string{"-c", core, "dnsperf", "-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", queries,
		"-c", "4", "-T", "1", "-l", strconv.Itoa(int(d.Seconds())), "-t", "2"}
	out, err := exec.Command("taskset", args...).CombinedOutput()
	if err != nil {
		return perf{}, fmt.Errorf("dnsperf: %w\n%s", err, out)
	}
	var p perf
	if m := reQPS.FindSubmatch(out); m != nil {
		p.qps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := reAvg.FindSubmatch(out); m != nil {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		p.avgMs = v * 1000
	}
	if m := reLost.FindSubmatch(out); m != nil {
		p.lost = string(m[1])
	}
	if p.qps == 0 {
		return p, fmt.Errorf("dnsperf printed no rate:\n%s", out)
	}
	p99, err := latencyP99(core, port, queries)
	if err != nil {
		return p, err
	}
	p.p99Ms = p99
	return p, nil
}

// latencyP99 runs dnsperf verbosely for 3 s: it prints every answer's
// latency, from which the 99th percentile comes.
func latencyP99(core string, port int, queries string) (float64, error) {
	cmd := exec.Command("taskset", "-c", core, "dnsperf", "-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", queries,
		"-c", "4", "-T", "1", "-l", "3", "-t", "2", "-v")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("dnsperf -v: %w", err)
	}
	var lat []float64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// "> NOERROR name A 0.000123"
		if len(f) >= 5 && f[0] == ">" {
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				lat = append(lat, v*1000)
			}
		}
	}
	if len(lat) == 0 {
		return 0, fmt.Errorf("dnsperf -v printed no latencies")
	}
	sort.Float64s(lat)
	return lat[len(lat)*99/100], nil
}

package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// printDetail prints what one size's deploy looked like from the prober.
func (r result) printDetail(w io.Writer) {
	fmt.Fprintf(w, "%s: rolling deploy to %s in %s; wrk: %d requests in %s, %d failed; HAProxy reloads %d → %d\n",
		r.appID, r.newVersion, secs(r.duration), r.wrk.requests, r.wrk.ran, r.wrk.failed(), r.reloadsBefore, r.reloadsAfter)
	first := "never"
	if r.firstNew >= 0 {
		first = "+" + secs(r.firstNew)
	}
	fmt.Fprintf(w, "  prober (a new connection every 20 ms): %d requests, %d failed; new version first at %s, old version last at +%s after the PUT\n",
		r.watchSent, r.watchNFailures, first, secs(r.lastOld))
	for _, f := range r.watchFailures {
		fmt.Fprintln(w, "  prober failure:", f)
	}
	fmt.Fprintf(w, "  keep-alive prober (one request at a time, no retry): %d requests on %d connections, %d failed\n", r.kaSent, r.kaConns, r.kaNFailures)
	for _, f := range r.kaFailures {
		fmt.Fprintln(w, "  keep-alive failure:", f)
	}
	fmt.Fprintf(w, "  API: first old task killing at %s, no old task left at %s after the PUT\n", plusSecs(r.firstKill), plusSecs(r.oldGone))
	fmt.Fprintf(w, "  50 requests on new connections after the deploy: %s\n", versionCounts(r.versions, r.newVersion))
}

func plusSecs(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return "+" + secs(d)
}

func versionCounts(m map[string]int, newV string) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		label := k
		if k == newV {
			label = "new version " + k
		}
		parts = append(parts, fmt.Sprintf("%d × %s", m[k], label))
	}
	return strings.Join(parts, ", ")
}

// printTable prints the figures of every size, as a Markdown table.
func printTable(w io.Writer, o options, rows []result, failed []string) {
	mode := "http (from the HTTP health check; no HAPROXY_0_MODE label)"
	if o.mode != "" {
		mode = "HAPROXY_0_MODE=" + o.mode
	}
	fmt.Fprintf(w, "\nRolling deploys (upgradeStrategy 1/1, HTTP health check every 1 s with delaySeconds %d, tasks unhealthy for their first 1 s; HAProxy mode %s) under `wrk -t%d -c%d --latency`, from %s before the PUT to %s after the deploy:\n\n",
		int(o.hcDelay/time.Second), mode, o.threads, o.conns, o.settle, o.settle)
	fmt.Fprintf(w, "| instances | deploy duration | wrk requests | req/s | wrk p99 | non-2xx/3xx | socket errors (connect/read/write/timeout) | failed | HAProxy reloads | after: new version |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		after := fmt.Sprintf("%d/50", r.versions[r.newVersion])
		if !r.newOnly {
			after += " MISMATCH"
		}
		fmt.Fprintf(w, "| %d | %s | %d | %.0f | %s | %d | %d (%d/%d/%d/%d) | %d | %d | %s |\n",
			r.n, secs(r.duration), r.wrk.requests, r.wrk.rps, r.wrk.p99, r.wrk.non2xx, r.wrk.socket(),
			r.wrk.connect, r.wrk.read, r.wrk.write, r.wrk.timeout, r.wrk.failed(), r.reloads(), after)
	}
	for _, f := range failed {
		fmt.Fprintf(w, "\nFAILED: %s\n", f)
	}
}

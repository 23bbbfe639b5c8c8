package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Pass rules, besides recovering within recoverTimeout with no state lost
// and no duplicated task: not one client error, DNS or HTTP — the app has
// instances in the surviving regions, and the region-1 sidecar the client
// uses is never touched (issue 6: "zero client errors").
const settleTimeout = 120 * time.Second

// result is one scenario's row.
type result struct {
	name            string
	detect, recover time.Duration // -1: never
	c               counts
	lost, dups      []string
	notes, fails    []string
	keep            func(Task) bool // tasks the failure may not touch
}

func (r *result) notef(f string, a ...any) { r.notes = append(r.notes, fmt.Sprintf(f, a...)) }
func (r *result) failf(f string, a ...any) { r.fails = append(r.fails, fmt.Sprintf(f, a...)) }
func (r *result) passed() bool             { return len(r.fails) == 0 }

// chaos runs every scenario under client traffic and prints the table.
func (l *Lab) chaos(w io.Writer) error {
	if err := l.detectMaster(); err != nil {
		return err
	}
	if ns, err := labNamespaces(); err != nil {
		return err
	} else if len(ns) == 0 {
		if err := l.up(); err != nil {
			return err
		}
	}
	// ^C in the middle of a scenario must not leave a region cut or a
	// master partitioned.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		err := healAll()
		fmt.Fprintf(w, "chaos: interrupted; links up and partitions removed (%v); processes a scenario stopped stay down until make lab\n", err)
		os.Exit(130)
	}()
	a := newAPI()
	logf := func(f string, args ...any) {
		fmt.Fprintf(w, "chaos %s  %s\n", time.Now().UTC().Format("15:04:05.0"), fmt.Sprintf(f, args...))
	}
	if err := l.deployChaosApp(a); err != nil {
		return err
	}
	before, err := l.waitSettled(a, settleTimeout)
	if err != nil {
		return fmt.Errorf("cluster does not settle before chaos: %w", err)
	}
	port := before.apps[chaosAppID].PortDefs[0].Port
	tr := newTraffic(a, chaosDNSName, host(clientHost.Region, "s").IP(), port)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tr.run(ctx)
	logf("traffic: dig @%s %s and GET %s every %s", tr.server, chaosDNSName, tr.httpURL, trafficInterval)

	var results []*result
	for i, sc := range scenarios() {
		r := &result{name: sc.name, detect: -1, recover: -1}
		results = append(results, r)
		logf("%d/4 %s", i+1, sc.name)
		if sc.needsZK && !l.MasterZK {
			r.failf("not run: %s master has no --zk (one master only)", l.Bin)
			continue
		}
		before, err := l.waitSettled(a, settleTimeout)
		if err != nil {
			r.failf("not settled before: %v", err)
			continue
		}
		time.Sleep(2 * time.Second) // a clean stretch of traffic before the failure
		t0 := time.Now()
		if err := sc.run(l, a, tr, before, r); err != nil {
			r.failf("%v", err)
		}
		for _, n := range r.notes {
			logf("    %s", n)
		}
		logf("    detect %s, recover %s; restoring", secs(r.detect), secs(r.recover))
		after, err := l.waitSettled(a, settleTimeout)
		if err != nil {
			r.failf("not settled after restore: %v", err)
		}
		time.Sleep(2 * time.Second) // and a clean stretch after
		l.judge(r, before, after, tr.between(t0, time.Now()))
		for _, f := range r.fails {
			logf("    FAIL: %s", f)
		}
	}
	cancel()
	return l.report(w, results)
}

// judge fills in the state and client findings and the verdict.
func (l *Lab) judge(r *result, before, after view, c counts) {
	r.c = c
	if r.recover < 0 {
		r.failf("no recovery within %s", recoverTimeout)
	}
	if after.apps != nil {
		keep := r.keep
		if keep == nil {
			keep = func(Task) bool { return true }
		}
		r.lost = stateLost(before, after, keep)
		r.dups = after.duplicates()
	}
	if len(r.lost) > 0 {
		r.failf("state lost: %s", strings.Join(r.lost, "; "))
	}
	if len(r.dups) > 0 {
		r.failf("duplicated task ids: %s", strings.Join(r.dups, ", "))
	}
	if c.dnsTotal == 0 || c.httpTotal == 0 {
		r.failf("no client traffic recorded")
	}
	if c.dnsErr > 0 {
		r.failf("DNS errors %d/%d: %s", c.dnsErr, c.dnsTotal, strings.Join(c.firstErrs, " | "))
	}
	if c.httpErr > 0 {
		r.failf("HTTP errors %d/%d: %s", c.httpErr, c.httpTotal, strings.Join(c.firstErrs, " | "))
	}
}

func secs(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// stale is "n/for": answers naming a dead address, over how long.
func stale(c counts) string {
	if c.dnsStale == 0 {
		return "0"
	}
	return fmt.Sprintf("%d/%.0fs", c.dnsStale, c.staleFor.Seconds())
}

func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }

// deployChaosApp creates the chaos app, or leaves it as it is.
func (l *Lab) deployChaosApp(a *api) error {
	base := masterURL(l.masterRegions()[0])
	var v struct{}
	if err := a.getJSON(base+"/v2/apps"+chaosAppID, &v); err == nil {
		return nil
	}
	if err := a.send("POST", base+"/v2/apps", []byte(chaosApp)); err != nil {
		return fmt.Errorf("deploy %s: %w", chaosAppID, err)
	}
	return nil
}

// report prints the table, writes it to <dir>/chaos-report.txt, and ends
// with the one summary line.
func (l *Lab) report(w io.Writer, results []*result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-38s %7s %7s %9s %9s %8s %8s %9s %4s %4s  %s\n", "SCENARIO", "DETECT", "RECOVER", "DNS ERR", "HTTP ERR", "DNS MAX", "HTTP MAX", "DNS STALE", "LOST", "DUPS", "RESULT")
	passed, failed := 0, 0
	for _, r := range results {
		verdict := "PASS"
		if r.passed() {
			passed++
		} else {
			verdict = "FAIL"
			failed++
		}
		fmt.Fprintf(&b, "%-38s %7s %7s %9s %9s %8s %8s %9s %4d %4d  %s\n", r.name, secs(r.detect), secs(r.recover),
			fmt.Sprintf("%d/%d", r.c.dnsErr, r.c.dnsTotal), fmt.Sprintf("%d/%d", r.c.httpErr, r.c.httpTotal),
			ms(r.c.dnsMax), ms(r.c.httpMax), stale(r.c), len(r.lost), len(r.dups), verdict)
	}
	b.WriteString("\n")
	for _, r := range results {
		for _, n := range r.notes {
			fmt.Fprintf(&b, "  %s: %s\n", r.name, n)
		}
		for _, f := range r.fails {
			fmt.Fprintf(&b, "  %s: FAIL: %s\n", r.name, f)
		}
	}
	fmt.Fprintf(&b, "chaos: %d passed, %d failed\n", passed, failed)
	fmt.Fprint(w, b.String())
	_ = os.WriteFile(filepath.Join(l.Dir, "chaos-report.txt"), []byte(b.String()), 0o644)
	if failed > 0 {
		os.Exit(1)
	}
	return nil
}

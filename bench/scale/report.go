package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Issue 13's targets at 100,000 tasks, printed beside the figures.
const (
	targetPost      = "p99 < 200 ms"
	targetLaunch    = "≥ 1,000 tasks/s in a 10,000-instance scale-up"
	targetApps      = "< 100 ms"
	targetAppsTasks = "< 2 s"
	targetRSS       = "< 1 GB"
	targetZero      = "0"
	targetRestartL  = "< 10 s (local store)"
	targetRestartZK = "< 20 s (ZooKeeper)"
)

func restartTarget(store string) string {
	if store == "zk" {
		return targetRestartZK
	}
	return targetRestartL
}

// line is one figure of a size: what, the figure, the target.
type line struct{ what, figure, target string }

func sizeLines(store string, r sizeResult) []line {
	rate := "–"
	if r.added > 0 && r.collapsed == "" {
		rate = fmt.Sprintf("%.0f tasks/s (%d in %s)", float64(r.added)/r.launchTook.Seconds(), r.added, r.launchTook.Round(100*time.Millisecond))
	} else if r.collapsed != "" {
		rate = "not all running: " + r.collapsed
	}
	restart := "–"
	switch {
	case r.restartErr != "":
		restart = "failed: " + r.restartErr
	case r.restart > 0:
		restart = fmt.Sprintf("%s (leading after %s)", secs(r.restart), secs(r.restartLead))
	case r.collapsed != "":
		restart = "not run (growth stopped)"
	}
	return []line{
		{"POST /v2/apps p50 / p99", fmt.Sprintf("%s / %s (%d POSTs)", ms(pct(r.posts, 50)), ms(pct(r.posts, 99)), len(r.posts)), targetPost},
		{"tasks launched per second", rate, targetLaunch},
		{"GET /v2/apps", r.apps.String(), targetApps},
		{"GET /v2/apps?embed=apps.tasks", r.appsT.String(), targetAppsTasks},
		{"GET /master/state", r.state.String(), "–"},
		{"master RSS", fmt.Sprintf("%.0f MB", r.rss), targetRSS},
		{"event → sidecar applied p99", fmt.Sprintf("%s (p50 %s, %d events; %d resyncs so far)", ms(pct(r.sidecar, 99)), ms(pct(r.sidecar, 50)), len(r.sidecar), r.resyncs), "–"},
		{"false unreachable agents", fmt.Sprint(r.falseUnreach), targetZero},
		{"tasks killed as unknown", fmt.Sprintf("%.0f unknown-task kills, %.0f lost from reports (master); %d kills of acked running tasks (agents)",
			r.unknownKills, r.lostReports, r.simKilledAckd), targetZero},
		{"leader restart → serving", restart, restartTarget(store)},
		{"reconcile passes", orDash(r.reconcile), "–"},
		{"status request → ack p50 / p99", rtts(r.statusRTT), "–"},
		{"simulated agents saw", r.fleet.String(), ""},
	}
}

func printSize(store string, o options, r sizeResult) {
	fmt.Printf("== %s store, %d tasks wanted, %d agents\n", storeName(store), r.size, o.agents)
	printLines(sizeLines(store, r))
}

func printLines(ls []line) {
	w := 0
	for _, l := range ls {
		w = max(w, len([]rune(l.what)))
	}
	for _, l := range ls {
		t := ""
		if l.target != "" {
			t = "   [target at 100k: " + l.target + "]"
		}
		fmt.Printf("  %-*s  %s%s\n", w, l.what, l.figure, t)
	}
	fmt.Println()
}

func scaleUpLines(r scaleUpResult) []line {
	fig := fmt.Sprintf("%.0f tasks/s (%d instances in %s, PUT took %s)", float64(r.instances-10)/r.took.Seconds(), r.instances-10, secs(r.took), ms(r.put))
	if r.err != "" {
		fig = "not all running: " + r.err
	}
	launched := "not all within the run"
	if r.launched > 0 {
		launched = secs(r.launched) + " after the PUT's start"
	}
	return []line{
		{"scale-up launch rate", fig, targetLaunch},
		{"every launch acked by its agent", launched, "–"},
		{"status request → ack p50 / p99", rtts(r.statusRTT), "–"},
		{"master's store writes", orDash(r.commits), "–"},
		{"false unreachable agents", fmt.Sprint(r.falseUnreach), targetZero},
		{"tasks killed as unknown", fmt.Sprintf("%.0f unknown-task kills, %.0f lost from reports (master); %d kills of acked running tasks (agents)",
			r.unknownKills, r.lostReports, r.fleet.KillsOfAcked), targetZero},
		{"simulated agents saw", r.fleet.String(), ""},
	}
}

func printScaleUp(store string, r scaleUpResult) {
	fmt.Printf("== %s store, one app scaled from 10 to %d instances, %d other tasks running\n", storeName(store), r.instances, r.at)
	printLines(scaleUpLines(r))
}

// printSummary is the run as one markdown table (a row per figure, a
// column per size) and the scale-up's line.
func printSummary(store string, o options, rows []sizeResult, su *scaleUpResult) {
	if len(rows) == 0 && su == nil {
		return
	}
	if len(rows) > 0 {
		printTable(store, o, rows)
	}
	if su != nil {
		ls := scaleUpLines(*su)
		fmt.Printf("%s store, %d-instance scale-up (at %d tasks): %s; false unreachable %s; killed as unknown: %s\n",
			storeName(store), su.instances, su.at, ls[0].figure, ls[4].figure, ls[5].figure)
	}
	fmt.Println()
}

// printTable prints a row per figure, a column per size.
func printTable(store string, o options, rows []sizeResult) {
	head := "| " + storeName(store) + " store, " + fmt.Sprint(o.agents) + " agents |"
	sep := "|---|"
	for _, r := range rows {
		head += fmt.Sprintf(" %d tasks |", r.size)
		sep += "---|"
	}
	head += " target at 100k |"
	sep += "---|"
	fmt.Println(head)
	fmt.Println(sep)
	var per [][]line
	for _, r := range rows {
		per = append(per, sizeLines(store, r))
	}
	n := len(sizeLines(store, sizeResult{})) - 1 // without the agents' line
	for i := 0; i < n; i++ {
		row := "| " + per[0][i].what + " |"
		for _, ls := range per {
			row += " " + ls[i].figure + " |"
		}
		fmt.Println(row + " " + per[0][i].target + " |")
	}
	fmt.Println()
}

func (r read) String() string {
	if r.err != nil {
		return fmt.Sprintf("failed after %s: %v", ms(r.took), r.err)
	}
	return fmt.Sprintf("%s (%s)", ms(r.took), size(r.size))
}

// pct is the p-th percentile of ds (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s) + 99) / 100
	return s[max(i-1, 0)]
}

// rtts is the p50 / p99 / max of status round trips, and how many.
func rtts(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	return fmt.Sprintf("%s / %s (max %s, %d acked requests)", ms(pct(ds, 50)), ms(pct(ds, 99)), ms(slices.Max(ds)), len(ds))
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return secs(d)
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func size(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.0f kB", float64(n)/1024)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// printLogCounts says how often the master logged what issue 13 names.
func printLogCounts(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/scale: read master log:", err)
		return
	}
	var parts []string
	for _, s := range []string{"unknown to the master", "unreachable", "slow consumer", "launch not answered", "level=ERROR", "level=WARN"} {
		parts = append(parts, fmt.Sprintf("%q %d", s, bytes.Count(data, []byte(s))))
	}
	fmt.Printf("master log (all its runs): %s\n\n", strings.Join(parts, ", "))
}

// keepLog copies the master's log into dir, if given.
func keepLog(dir, path, store string) {
	if dir == "" {
		return
	}
	data, err := os.ReadFile(path)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "master-"+store+".log"), data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/scale: keep master log:", err)
	}
}

// lastLines is the end of a log file, for an error.
func lastLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

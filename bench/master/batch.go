package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/atollhq/atoll/events"
)

// batchResult is one batch's row and the master's metrics after it.
type batchResult struct {
	row     string
	metrics metrics
}

// runBatch adds one batch of apps (numbered from *app on), waits until
// every wanted task runs and measures the reads. A batch that does not get
// there within o.batchTimeout returns errBatchTimeout with the tasks'
// states.
func runBatch(ctx context.Context, m *master, o options, app *int, prev metrics, c *counters) (batchResult, error) {
	start := time.Now()
	before := c.snapshot()
	fleet := func() string {
		now := c.snapshot()
		return fmt.Sprintf("%d, %d", now.heartbeatFails-before.heartbeatFails, now.killUnknown-before.killUnknown)
	}
	var posts []time.Duration
	for i := 0; i < o.appsPerBatch && *app*o.instances < o.maxTasks; i++ {
		id := fmt.Sprintf("/sim/app-%05d", *app)
		body := map[string]any{
			"id": id, "cmd": "sleep 1000000", "instances": o.instances, "cpus": 0.01, "mem": 1,
			"portDefinitions": []map[string]any{{"port": 0, "protocol": "tcp"}},
		}
		_, took, _, err := m.api.call(ctx, http.MethodPost, "/v2/apps", body)
		if err != nil {
			return batchResult{}, fmt.Errorf("app %s: %w", id, err)
		}
		posts = append(posts, took)
		*app++
		if time.Since(start) > o.batchTimeout {
			return batchResult{}, fmt.Errorf("%w: the batch's POSTs alone took over %s (%d of them)", errBatchTimeout, o.batchTimeout, len(posts))
		}
	}
	target := *app * o.instances
	added := len(posts) * o.instances
	deadline := start.Add(o.batchTimeout)
	var mt metrics
	for {
		if err := m.exited(); err != nil {
			return batchResult{}, err
		}
		// A master too busy to answer still must not hang the run.
		pctx, cancel := context.WithDeadline(ctx, deadline.Add(30*time.Second))
		var err error
		mt, err = m.api.metrics(pctx)
		cancel()
		if err == nil && int(mt.tasks[string(events.TaskRunning)]) >= target {
			break
		}
		if time.Now().After(deadline) {
			if err != nil {
				return batchResult{}, fmt.Errorf("%w: %d tasks wanted after %s; metrics: %v", errBatchTimeout, target, o.batchTimeout, err)
			}
			rss, _ := rssMB(m.cmd.Process.Pid)
			return batchResult{row: fmt.Sprintf("| %d | %s / %s | **not all running after %s**: %s; %v deployments; in the batch the master staged %.0f launches, sent %.0f kills, counted %.0f failures | | | %.0f MB | %.0f | %s |",
					target, ms(pct(posts, 50)), ms(pct(posts, 99)), o.batchTimeout, states(mt, target), mt.deployments,
					mt.launches-prev.launches, mt.kills-prev.kills, mt.failures-prev.failures, rss, mt.reconcileCount-prev.reconcileCount, fleet()),
					metrics: mt},
				fmt.Errorf("%w: %d tasks wanted, %s, after %s", errBatchTimeout, target, states(mt, target), o.batchTimeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
	allRunning := time.Since(start)

	appsSize, appsTook, _, err := m.api.call(ctx, http.MethodGet, "/v2/apps?embed=apps.tasks", nil)
	if err != nil {
		return batchResult{}, err
	}
	stateSize, stateTook, _, err := m.api.call(ctx, http.MethodGet, "/master/state", nil)
	if err != nil {
		return batchResult{}, err
	}
	rss, err := rssMB(m.cmd.Process.Pid)
	if err != nil {
		return batchResult{}, err
	}
	passes := mt.reconcileCount - prev.reconcileCount
	mean := "–"
	if passes > 0 {
		mean = ms(time.Duration((mt.reconcileSum - prev.reconcileSum) / passes * float64(time.Second)))
	}
	return batchResult{
		row: fmt.Sprintf("| %d | %s / %s | %s (%.0f tasks/s) | %s (%s) | %s (%s) | %.0f MB | %.0f (%s) | %s |",
			target, ms(pct(posts, 50)), ms(pct(posts, 99)),
			allRunning.Round(100*time.Millisecond), float64(added)/allRunning.Seconds(),
			ms(appsTook), size(appsSize), ms(stateTook), size(stateSize), rss, passes, mean, fleet()),
		metrics: mt,
	}, nil
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

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func size(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.0f kB", float64(n)/1024)
}

// states lists the master's tasks by state, most first, and how many of
// the wanted tasks it holds none for.
func states(mt metrics, wanted int) string {
	type kv struct {
		k string
		v float64
	}
	var all []kv
	for k, v := range mt.tasks {
		if v > 0 {
			all = append(all, kv{k, v})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v })
	parts := []string{}
	for _, e := range all {
		parts = append(parts, fmt.Sprintf("%s %.0f", e.k, e.v))
	}
	held := 0.0
	for _, e := range all {
		held += e.v
	}
	if missing := float64(wanted) - held; missing > 0 {
		parts = append(parts, fmt.Sprintf("%.0f wanted without a task (backoff or not yet placed)", missing))
	}
	if len(parts) == 0 {
		return "no tasks"
	}
	return strings.Join(parts, ", ")
}

// printLogCounts says how often the master logged what issue 13 names.
func (m *master) printLogCounts() {
	data, err := os.ReadFile(m.logPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/master: read master log:", err)
		return
	}
	for _, s := range []string{"unknown to the master", "unreachable", "slow consumer", "level=ERROR", "level=WARN"} {
		fmt.Printf("master log: %q %d times\n", s, bytes.Count(data, []byte(s)))
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

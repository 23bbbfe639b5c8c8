package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/simagent"
)

// cluster is one store mode's run: the master, the fleet, the sidecar and
// how many tasks are wanted so far.
type cluster struct {
	o      options
	store  string
	m      *master
	fleet  *simagent.Fleet
	sc     *sidecar
	app    int // next app number
	wanted int
	last   metrics // at the end of the last size
}

// sizeResult is what one size's row shows.
type sizeResult struct {
	size          int
	posts         []time.Duration
	added         int
	launchTook    time.Duration
	collapsed     string // why the growth stopped, "" if it did not
	apps, appsT   read
	state         read
	rss           float64
	sidecar       []time.Duration
	resyncs       uint64 // the sidecar's, over the run so far
	falseUnreach  int
	unknownKills  float64
	lostReports   float64
	simKilledAckd int64
	fleet         simagent.Snapshot
	statusRTT     []time.Duration // the agents' acked status requests, send to ack
	reconcile     string
	restart       time.Duration
	restartLead   time.Duration
	restartErr    string
}

// read is one GET's latency and answer size (the median of a few).
type read struct {
	took time.Duration
	size int
	err  error
}

// growTo adds batches of apps until size tasks are wanted and all run, or
// a batch does not get there within the batch timeout.
func (c *cluster) growTo(ctx context.Context, size int) sizeResult {
	r := sizeResult{size: size}
	before := c.fleet.Counters.Snapshot()
	c.sc.take() // the size's own events only
	c.fleet.Counters.TakeStatusRTTs()
	from := c.wanted
	start := time.Now()
	for c.wanted < size {
		posts, err := c.postBatch(ctx, min(c.o.appsPerBatch, (size-c.wanted+c.o.instances-1)/c.o.instances))
		r.posts = append(r.posts, posts...)
		if err != nil {
			r.collapsed = err.Error()
			break
		}
		if err := c.waitRunning(ctx, start); err != nil {
			r.collapsed = err.Error()
			break
		}
	}
	r.size = c.wanted
	r.added = c.wanted - from
	r.launchTook = time.Since(start)
	r.statusRTT = c.fleet.Counters.TakeStatusRTTs() // the growth's, not the restart's
	c.measure(ctx, &r, before)
	return r
}

// postBatch POSTs n apps of o.instances each, o.postConcurrency at a time.
func (c *cluster) postBatch(ctx context.Context, n int) ([]time.Duration, error) {
	var (
		mu    sync.Mutex
		posts []time.Duration
		first error
		wg    sync.WaitGroup
	)
	ids := make(chan string)
	for range c.o.postConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				body := map[string]any{
					"id": id, "cmd": "sleep 1000000", "instances": c.o.instances, "cpus": 0.01, "mem": 1,
					"portDefinitions": []map[string]any{{"port": 0, "protocol": "tcp"}},
				}
				_, took, _, err := c.m.api.call(ctx, http.MethodPost, "/v2/apps", body)
				mu.Lock()
				posts = append(posts, took)
				if err != nil && first == nil {
					first = fmt.Errorf("app %s: %w", id, err)
				}
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(c.o.batchTimeout)
	sent := 0
	for ; sent < n && time.Now().Before(deadline); sent++ {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		ids <- fmt.Sprintf("/sim/app-%06d", c.app)
		c.app++
		c.wanted += c.o.instances
	}
	close(ids)
	wg.Wait()
	if first != nil {
		return posts, first
	}
	if sent < n {
		return posts, fmt.Errorf("%w: a batch's POSTs alone took over %s (%d of %d sent)", errBatchTimeout, c.o.batchTimeout, sent, n)
	}
	return posts, nil
}

// waitRunning waits until every wanted task runs, at most the batch
// timeout from now.
func (c *cluster) waitRunning(ctx context.Context, since time.Time) error {
	deadline := time.Now().Add(c.o.batchTimeout)
	for {
		if err := c.m.exited(); err != nil {
			return err
		}
		pctx, cancel := context.WithDeadline(ctx, deadline.Add(30*time.Second))
		mt, err := c.m.api.metrics(pctx)
		cancel()
		if err == nil && int(mt.tasks[string(events.TaskRunning)]) >= c.wanted {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("%w: %d tasks wanted after %s; metrics: %v", errBatchTimeout, c.wanted, c.o.batchTimeout, err)
			}
			return fmt.Errorf("%w: %d tasks wanted, %s; %.0f deployments, after %s of the batch (%s of the size)",
				errBatchTimeout, c.wanted, states(mt, c.wanted), mt.deployments, c.o.batchTimeout, time.Since(since).Round(time.Second))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// measure fills in the reads and the counts at the end of a size.
func (c *cluster) measure(ctx context.Context, r *sizeResult, before simagent.Snapshot) {
	rctx, cancel := context.WithTimeout(ctx, c.o.readTimeout)
	defer cancel()
	r.apps = c.get(rctx, "/v2/apps")
	r.appsT = c.get(rctx, "/v2/apps?embed=apps.tasks")
	r.state = c.get(rctx, "/master/state")
	r.rss, _ = rssMB(c.m.pid())
	if c.o.heapProfiles != "" {
		c.saveHeapProfile(rctx, c.wanted)
	}
	r.sidecar, r.falseUnreach = c.sc.take()
	r.resyncs = c.sc.f.Resyncs()
	r.fleet = c.fleet.Counters.Snapshot().Sub(before)
	r.simKilledAckd = r.fleet.KillsOfAcked
	mt, err := c.m.api.metrics(rctx)
	if err != nil {
		r.reconcile = "metrics: " + err.Error()
		return
	}
	r.unknownKills = mt.unknownKills - c.last.unknownKills
	r.lostReports = mt.lostFromReports - c.last.lostFromReports
	if passes := mt.reconcileCount - c.last.reconcileCount; passes > 0 {
		r.reconcile = fmt.Sprintf("%.0f passes, %s mean", passes, ms(time.Duration((mt.reconcileSum-c.last.reconcileSum)/passes*float64(time.Second))))
	}
	c.last = mt
}

// get reads path a few times (three; once if it takes over a second) and
// keeps the median.
func (c *cluster) get(ctx context.Context, path string) read {
	var rs []read
	for i := 0; i < 3; i++ {
		size, took, _, err := c.m.api.call(ctx, http.MethodGet, path, nil)
		if err != nil {
			return read{took: took, err: err}
		}
		rs = append(rs, read{took: took, size: size})
		if took > time.Second {
			break
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].took < rs[j].took })
	return rs[len(rs)/2]
}

// restart kills the leader and starts it again on its store, and times
// until it leads and until GET /v2/apps counts every wanted task running
// with every agent active.
func (c *cluster) restart(ctx context.Context, r *sizeResult) {
	c.m.stop(syscall.SIGKILL)
	start := time.Now()
	if err := c.m.start(); err != nil {
		r.restartErr = err.Error()
		return
	}
	deadline := start.Add(c.o.restartTimeout)
	last := ""
	for {
		if err := c.m.exited(); err != nil {
			r.restartErr = err.Error()
			return
		}
		if r.restartLead == 0 && c.m.elected(ctx) {
			r.restartLead = time.Since(start)
		}
		if r.restartLead > 0 {
			running, err := c.runningFromApps(ctx)
			if err == nil {
				mt, merr := c.m.api.metrics(ctx)
				active := 0
				if merr == nil {
					active = int(mt.agents[string(events.AgentActive)])
				}
				if running >= c.wanted && active >= c.o.agents {
					r.restart = time.Since(start)
					c.last = mt
					return
				}
				last = fmt.Sprintf("%d of %d tasks running, %d of %d agents active", running, c.wanted, active, c.o.agents)
			} else {
				last = err.Error()
			}
		}
		if time.Now().After(deadline) {
			r.restartErr = fmt.Sprintf("not serving after %s: %s", c.o.restartTimeout, last)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runningFromApps sums tasksRunning over GET /v2/apps.
func (c *cluster) runningFromApps(ctx context.Context) (int, error) {
	_, _, data, err := c.m.api.call(ctx, http.MethodGet, "/v2/apps", nil)
	if err != nil {
		return 0, err
	}
	var body struct {
		Apps []struct {
			TasksRunning int `json:"tasksRunning"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return 0, fmt.Errorf("GET /v2/apps: %w", err)
	}
	n := 0
	for _, a := range body.Apps {
		n += a.TasksRunning
	}
	return n, nil
}

// scaleUpResult is the 10,000-instance scale-up's figures.
type scaleUpResult struct {
	at, instances int
	put           time.Duration
	took          time.Duration
	err           string
	unknownKills  float64
	lostReports   float64
	falseUnreach  int
	fleet         simagent.Snapshot
	// launched is when the agents had acked every launch of the
	// scale-up (after the PUT's start); the rest of took is their status
	// updates on their way to running in the master's state.
	launched  time.Duration
	statusRTT []time.Duration // the agents' acked status requests, send to ack
	commits   string          // the master's store writes meanwhile
}

// scaleUp adds an app of 10 instances, then PUTs it to n instances and
// times until they all run.
func (c *cluster) scaleUp(ctx context.Context, n int) scaleUpResult {
	r := scaleUpResult{at: c.wanted, instances: n}
	const id = "/scale/up"
	body := map[string]any{"id": id, "cmd": "sleep 1000000", "instances": 10, "cpus": 0.01, "mem": 1,
		"portDefinitions": []map[string]any{{"port": 0, "protocol": "tcp"}}}
	if _, _, _, err := c.m.api.call(ctx, http.MethodPost, "/v2/apps", body); err != nil {
		r.err = err.Error()
		return r
	}
	c.wanted += 10
	if err := c.waitRunning(ctx, time.Now()); err != nil {
		r.err = err.Error()
		return r
	}
	before := c.fleet.Counters.Snapshot()
	pre := c.last
	if mt, err := c.m.api.metrics(ctx); err == nil {
		pre = mt
	}
	c.sc.take()
	c.fleet.Counters.TakeStatusRTTs()
	start := time.Now()
	launched := make(chan time.Duration, 1)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go watchLaunchAcks(wctx, c.fleet.Counters, before.LaunchAcks+int64(n-10), start, launched)
	_, took, _, err := c.m.api.call(ctx, http.MethodPut, "/v2/apps"+id, map[string]any{"instances": n})
	r.put = took
	if err != nil {
		r.err = err.Error()
		return r
	}
	c.wanted += n - 10
	err = c.waitRunning(ctx, start)
	r.took = time.Since(start)
	if err != nil {
		r.err = err.Error()
	}
	stopWatch()
	r.launched = <-launched
	r.statusRTT = c.fleet.Counters.TakeStatusRTTs()
	_, r.falseUnreach = c.sc.take()
	r.fleet = c.fleet.Counters.Snapshot().Sub(before)
	if mt, err := c.m.api.metrics(ctx); err == nil {
		r.unknownKills, r.lostReports = mt.unknownKills-pre.unknownKills, mt.lostFromReports-pre.lostFromReports
		r.commits = commitsBetween(pre, mt)
		c.last = mt
	}
	return r
}

// states lists the master's tasks by state, most first, and how many of
// the wanted tasks it holds none for.
func states(mt metrics, wanted int) string {
	type kv struct {
		k string
		v float64
	}
	var all []kv
	held := 0.0
	for k, v := range mt.tasks {
		if v > 0 {
			all = append(all, kv{k, v})
			held += v
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v })
	parts := []string{}
	for _, e := range all {
		parts = append(parts, fmt.Sprintf("%s %.0f", e.k, e.v))
	}
	if missing := float64(wanted) - held; missing > 0 {
		parts = append(parts, fmt.Sprintf("%.0f wanted without a task (backoff or not yet placed)", missing))
	}
	if len(parts) == 0 {
		return "no tasks"
	}
	return strings.Join(parts, ", ")
}

// saveHeapProfile writes the master's heap profile, after a GC, to
// <heap-profiles>/heap-<store>-<tasks>.pb.gz.
func (c *cluster) saveHeapProfile(ctx context.Context, tasks int) {
	_, _, data, err := c.m.api.call(ctx, "GET", "/debug/pprof/heap?gc=1", nil)
	if err == nil {
		err = os.WriteFile(filepath.Join(c.o.heapProfiles, fmt.Sprintf("heap-%s-%d.pb.gz", c.store, tasks)), data, 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "heap profile at %d tasks: %v\n", tasks, err)
	}
}

// watchLaunchAcks sends on out how long after start the fleet's acked
// launches reached want (0: not before ctx ended), polling every 10 ms.
func watchLaunchAcks(ctx context.Context, c *simagent.Counters, want int64, start time.Time, out chan<- time.Duration) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if c.LaunchAcks.Load() >= want {
			out <- time.Since(start)
			return
		}
		select {
		case <-ctx.Done():
			out <- 0
			return
		case <-t.C:
		}
	}
}

// commitsBetween says how many store writes the master made between two
// metrics readings, their mean time and mean events.
func commitsBetween(pre, post metrics) string {
	n := post.commitCount - pre.commitCount
	if n <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f, %.1f ms and %.0f events each on average", n,
		1000*(post.commitSum-pre.commitSum)/n, (post.commitEvents-pre.commitEvents)/n)
}

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/atollhq/atoll/events"
)

// scaleFigures is what wrk saw while an app was scaled up and down.
type scaleFigures struct {
	events, minTasks, maxTasks int
	every                      time.Duration
	conns, threads             int
	wrk                        wrkResult
	reloads                    int // master reloads ("show proc") during the run
	processReloads             int
	final                      string // backends serving at the end vs the tasks
	finalOK                    bool
}

type scaleOpts struct {
	events, maxTasks, threads, conns int
	every, minReload                 time.Duration
	wrkBin                           string
}

// measureScale creates an app on port, then runs wrk against it while
// o.events scale events change its task set among pool's backends, one
// every o.every. A scale event is what the master publishes: the app with
// its new instance count, new tasks running, removed tasks killing (they
// drain) and, on the next event, killed.
func measureScale(ctx context.Context, w *world, sc lbUnderTest, pr *prober, pool []*backend, port int, o scaleOpts) (scaleFigures, error) {
	f := scaleFigures{events: o.events, every: o.every, conns: o.conns, threads: o.threads, minTasks: 1, maxTasks: o.maxTasks}
	idx := len(w.apps)
	a, cs := w.addApp(idx, port, pool[:2])
	if err := w.l.Commit(cs...); err != nil {
		return f, err
	}
	if _, err := pr.waitFor(ctx, port, a.ids(), 1, time.Now().Add(30*time.Second)); err != nil {
		return f, fmt.Errorf("scaled app: %w", err)
	}
	// Let the creation's reload and any rate-limited follow-up finish.
	if err := sleep(ctx, o.minReload+200*time.Millisecond); err != nil {
		return f, err
	}
	before, err := sc.reloads(ctx)
	if err != nil {
		return f, err
	}
	procBefore, err := sc.ownReloads(ctx)
	if err != nil {
		return f, err
	}

	wait, err := startWrk(ctx, o.wrkBin, "http://127.0.0.1:"+strconv.Itoa(port)+"/", o.threads, o.conns,
		time.Duration(o.events)*o.every+3*time.Second)
	if err != nil {
		return f, err
	}
	if err := sleep(ctx, time.Second); err != nil {
		return f, err
	}
	rng := rand.New(rand.NewPCG(7, 11))
	var killing []taskRef
	tick := time.NewTicker(o.every)
	for i := 0; i < o.events; i++ {
		cs := finish(w, a, killing)
		killing = nil
		live := len(a.tasks)
		n := live
		for n == live {
			n = 1 + rng.IntN(o.maxTasks)
		}
		cs = append(cs, events.PutApp(benchApp(idx, port, n)))
		for ; live < n; live++ {
			cs = append(cs, w.start(a, a.spare(pool, i)))
		}
		if live > n {
			killing = append(killing, a.tasks[:live-n]...)
			for _, t := range killing {
				cs = append(cs, w.end(a, t, events.TaskKilling))
			}
		}
		if err := w.l.Commit(cs...); err != nil {
			tick.Stop()
			return f, err
		}
		select {
		case <-ctx.Done():
			tick.Stop()
			return f, ctx.Err()
		case <-tick.C:
		}
	}
	tick.Stop()
	if err := w.l.Commit(finish(w, a, killing)...); err != nil {
		return f, err
	}
	if f.wrk, err = wait(); err != nil {
		return f, err
	}
	after, err := sc.reloads(ctx)
	if err != nil {
		return f, err
	}
	procAfter, err := sc.ownReloads(ctx)
	if err != nil {
		return f, err
	}
	f.reloads, f.processReloads = after-before, procAfter-procBefore

	// The last membership must be what HAProxy serves.
	seen, err := pr.served(ctx, port, 8*len(a.tasks))
	if err != nil {
		return f, err
	}
	f.final, f.finalOK = compareServed(seen, a.ids())
	return f, nil
}

// finish is the changes that end the killing tasks.
func finish(w *world, a *appModel, killing []taskRef) []events.Change {
	var cs []events.Change
	for _, t := range killing {
		cs = append(cs, w.end(a, t, events.TaskKilled))
	}
	return cs
}

func compareServed(seen map[string]int, want map[string]bool) (string, bool) {
	var got []string
	ok := len(seen) == len(want)
	for id := range seen {
		got = append(got, id)
		ok = ok && want[id]
	}
	sort.Strings(got)
	w := keys(want)
	sort.Strings(w)
	return fmt.Sprintf("served by [%s], tasks on [%s]", strings.Join(got, " "), strings.Join(w, " ")), ok
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

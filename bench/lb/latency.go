package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/atollhq/atoll/events"
)

// taskChangeFigures is event → serving for tasks moved to another backend.
type taskChangeFigures struct {
	lat            []time.Duration
	reloadsBefore  int // master reload count ("show proc") before the changes
	reloadsAfter   int
	processReloads int // reloads the sidecar's Process did meanwhile
	split          breakdown
}

// measureTaskChanges moves one task of n different apps to a backend the
// app did not use: a TaskUpdated (new task running) and a TaskUpdated
// (old task killed) are published, and the time runs from just before
// the publish to the first response through HAProxy from the new
// backend. settle lets the old task's removal land before the next one.
func measureTaskChanges(ctx context.Context, w *world, sc lbUnderTest, pr *prober, fleet []*backend, n int, settle time.Duration) (taskChangeFigures, error) {
	var f taskChangeFigures
	before, err := sc.ownReloads(ctx)
	if err != nil {
		return f, err
	}
	if f.reloadsBefore, err = sc.reloads(ctx); err != nil {
		return f, err
	}
	apps := w.apps
	var published, served []time.Time
	for i := 0; i < n; i++ {
		a := apps[(i*7919)%len(apps)]
		old := a.tasks[0]
		nb := a.spare(fleet, i)
		if nb == nil {
			return f, fmt.Errorf("app %d: no spare backend in a fleet of %d", a.idx, len(fleet))
		}
		round := len(a.tasks) + 1
		start := time.Now()
		if err := w.l.Commit(w.start(a, nb), w.end(a, old, events.TaskKilled)); err != nil {
			return f, err
		}
		seen, err := pr.waitFor(ctx, a.port, map[string]bool{nb.id: true}, round, start.Add(10*time.Second))
		if err != nil {
			return f, fmt.Errorf("task change %d (app %d): %w; %s", i, a.idx, err, sc.diagnose(ctx, a, start, w.l.Seq()))
		}
		f.lat = append(f.lat, seen.Sub(start))
		published, served = append(published, start), append(served, seen)
		select {
		case <-ctx.Done():
			return f, ctx.Err()
		case <-time.After(settle):
		}
	}
	if f.reloadsAfter, err = sc.reloads(ctx); err != nil {
		return f, err
	}
	after, err := sc.ownReloads(ctx)
	if err != nil {
		return f, err
	}
	f.processReloads = after - before
	f.split = sc.split(published, served)
	return f, nil
}

// newAppFigures is event → serving for new apps (a reload each).
type newAppFigures struct {
	lat     []time.Duration
	reloads int // master reloads during the measurement
	split   breakdown
}

// measureNewApps publishes one new app per port (its AppUpdated, then its
// tasks' TaskUpdated) and times, from just before the publish, until its
// service port answers from one of its backends. Each app waits until
// minReload has passed since the last one's reload returned, so that no
// app waits for the Syncer's reload rate limit.
func measureNewApps(ctx context.Context, w *world, sc lbUnderTest, pr *prober, fleet []*backend, ports []int, perApp int, minReload time.Duration, verbose bool) (newAppFigures, error) {
	var f newAppFigures
	before, err := sc.reloads(ctx)
	if err != nil {
		return f, err
	}
	last := time.Now()
	var published, served []time.Time
	for j, port := range ports {
		if wait := time.Until(last.Add(minReload + 100*time.Millisecond)); wait > 0 {
			select {
			case <-ctx.Done():
				return f, ctx.Err()
			case <-time.After(wait):
			}
		}
		bs := make([]*backend, perApp)
		for k := range bs {
			bs[k] = fleet[(j*perApp+k)%len(fleet)]
		}
		idx := len(w.apps)
		a, cs := w.addApp(idx, port, bs)
		own, err := sc.ownReloads(ctx)
		if err != nil {
			return f, err
		}
		start := time.Now()
		if err := w.l.Commit(cs...); err != nil {
			return f, err
		}
		seen, err := pr.waitFor(ctx, port, a.ids(), 1, start.Add(30*time.Second))
		if err != nil {
			return f, fmt.Errorf("new app %d: %w", idx, err)
		}
		f.lat = append(f.lat, seen.Sub(start))
		published, served = append(published, start), append(served, seen)
		// The Syncer's rate limit counts from the end of the reload's
		// Apply, which returns a little after the new worker serves.
		if last, err = sc.reloaded(ctx, start, own, 30*time.Second); err != nil {
			return f, fmt.Errorf("new app %d: %w", idx, err)
		}
		if verbose {
			n, _ := sc.reloads(ctx)
			fmt.Fprintf(os.Stderr, "new app %d: %s, master reloads %d:%s\n", idx, ms(seen.Sub(start)), n, sc.describe(start))
		}
	}
	after, err := sc.reloads(ctx)
	if err != nil {
		return f, err
	}
	f.reloads = after - before
	f.split = sc.split(published, served)
	return f, nil
}

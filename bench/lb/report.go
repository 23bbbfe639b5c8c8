package main

import (
	"fmt"
	"io"
	"sort"
	"time"
)

// stats summarises a sample of durations.
type stats struct {
	n                  int
	min, p50, p99, max time.Duration
}

func summarize(d []time.Duration) stats {
	if len(d) == 0 {
		return stats{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1 // nearest rank
		return s[max(0, min(i, len(s)-1))]
	}
	return stats{n: len(s), min: s[0], p50: rank(0.50), p99: rank(0.99), max: s[len(s)-1]}
}

// ms prints a duration in milliseconds with 2 decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func pair(d []time.Duration) string {
	s := summarize(d)
	return ms(s.p50) + " / " + ms(s.p99)
}

// results is every figure of one run.
type results struct {
	renders []renderFigures
	task    taskChangeFigures
	newApp  newAppFigures
	scale   scaleFigures
	stale   staleFigures
	apps    int
	sidecar string // what ran the sidecar, for the heading
}

func (r *results) print(w io.Writer) {
	fmt.Fprintf(w, "\n### Render and check (lbsync.Render / RenderNext / CheckWithHAProxy; median of runs, min–max)\n\n")
	fmt.Fprintf(w, "| apps × 3 tasks | config | cold render | incremental render (1 task moved) | `haproxy -c` |\n|---|---|---|---|---|\n")
	for _, f := range r.renders {
		c, i, h := summarize(f.cold), summarize(f.incremental), summarize(f.check)
		fmt.Fprintf(w, "| %d | %.1f MB | %s (%s–%s) | %s (%s–%s), reload %v, %d commands | %s (%s–%s) |\n",
			f.apps, float64(f.configBytes)/(1<<20), ms(c.p50), ms(c.min), ms(c.max), ms(i.p50), ms(i.min), ms(i.max),
			f.incrReload, f.incrCommands, ms(h.p50), ms(h.min), ms(h.max))
	}

	fmt.Fprintf(w, "\n### Event → HAProxy serving at %d apps × 3 tasks (NATS → %s → haproxy)\n\n", r.apps, r.sidecar)
	fmt.Fprintf(w, "| change | n | p50 | p99 | max | reloads |\n|---|---|---|---|---|---|\n")
	t := summarize(r.task.lat)
	fmt.Fprintf(w, "| task moved to another backend (runtime API) | %d | %s | %s | %s | %d (show proc %d → %d) |\n",
		t.n, ms(t.p50), ms(t.p99), ms(t.max), r.task.processReloads, r.task.reloadsBefore, r.task.reloadsAfter)
	a := summarize(r.newApp.lat)
	fmt.Fprintf(w, "| new app, new service port (reload) | %d | %s | %s | %s | %d |\n",
		a.n, ms(a.p50), ms(a.p99), ms(a.max), r.newApp.reloads)

	if len(r.task.split.render)+len(r.newApp.split.render) > 0 {
		fmt.Fprintf(w, "\nWhere the time went (p50 / p99): publish → render starts, the render (Syncer.Idle), publish → Apply starts, the Apply, Apply start → served\n\n")
		fmt.Fprintf(w, "| change | → render | render | → Apply | Apply | Apply → served |\n|---|---|---|---|---|---|\n")
		for _, row := range []struct {
			name string
			b    breakdown
		}{{"task moved", r.task.split}, {"new app", r.newApp.split}} {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", row.name, pair(row.b.toRender), pair(row.b.render),
				pair(row.b.toApply), pair(row.b.apply), pair(row.b.applyToServed))
		}
	}

	s := r.scale
	fmt.Fprintf(w, "\n### %d scale events (1–%d tasks, one every %v) under `wrk -t%d -c%d`\n\n", s.events, s.maxTasks, s.every, s.threads, s.conns)
	fmt.Fprintf(w, "| requests | req/s | wrk p99 | non-2xx/3xx | socket errors | failed | reloads |\n|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(w, "| %d | %.0f | %s | %d | %d | %d | %d (Process: %d) |\n",
		s.wrk.requests, s.wrk.rps, s.wrk.p99, s.wrk.non2xx, s.wrk.socket, s.wrk.failed(), s.reloads, s.processReloads)
	ok := "ok"
	if !s.finalOK {
		ok = "MISMATCH"
	}
	fmt.Fprintf(w, "\nafter the last event, new connections: %s (%s)\n", s.final, ok)
	k := r.stale
	fmt.Fprintf(w, "\nbusy keep-alive client during %d task moves: of %d requests sent 50–250 ms after the move served new connections, %d were answered by the moved task's old backend (%d of %d moves affected)\n",
		k.moves, k.after, k.stray, k.affected, k.moves)
}

// target is one goal of the issue and whether this run met it.
type target struct {
	name, figure string
	ok           bool
}

func (r *results) targets() []target {
	var ts []target
	t := summarize(r.task.lat)
	ts = append(ts,
		target{"task change serving p99 < 20 ms", ms(t.p99), t.n > 0 && t.p99 < 20*time.Millisecond},
		target{"task change: 0 reloads", fmt.Sprint(r.task.processReloads + (r.task.reloadsAfter - r.task.reloadsBefore)),
			r.task.processReloads == 0 && r.task.reloadsAfter == r.task.reloadsBefore})
	a := summarize(r.newApp.lat)
	ts = append(ts, target{fmt.Sprintf("new app serving p99 < 1 s at %d apps", r.apps), ms(a.p99), a.n > 0 && a.p99 < time.Second})
	for _, f := range r.renders {
		if f.apps != 10000 {
			continue
		}
		c, i := summarize(f.cold), summarize(f.incremental)
		ts = append(ts,
			target{"render 10,000 apps < 200 ms (cold, median)", ms(c.p50), c.p50 < 200*time.Millisecond},
			target{"render 10,000 apps < 200 ms (incremental, median)", ms(i.p50), i.p50 < 200*time.Millisecond})
	}
	s := r.scale
	ts = append(ts,
		target{fmt.Sprintf("0 failed requests over %d scale events", s.events), fmt.Sprint(s.wrk.failed()), s.wrk.requests > 0 && s.wrk.failed() == 0},
		target{"0 reloads over the scale events (DESIGN §6)", fmt.Sprint(s.reloads), s.reloads == 0 && s.processReloads == 0},
		target{"(extra) keep-alive requests reach only running tasks after a task move", fmt.Sprintf("%d of %d stray", r.stale.stray, r.stale.after),
			r.stale.moves > 0 && r.stale.stray == 0})
	return ts
}

func printTargets(w io.Writer, ts []target) (missed int) {
	fmt.Fprintf(w, "\n### Targets\n\n| target | figure | |\n|---|---|---|\n")
	for _, t := range ts {
		v := "PASS"
		if !t.ok {
			v = "MISS"
			missed++
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.name, t.figure, v)
	}
	return missed
}

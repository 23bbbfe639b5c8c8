package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/lbsync"
)

// The wrappers below only take the time of the sidecar's two steps —
// the render on the follower's goroutine (Syncer.Idle) and the applier's
// Apply — and call through, so that a latency can be split into where it
// went. They change nothing else.

type span struct {
	start, end time.Time
	note       string // what it did, for -v and error messages
}

type timeline struct {
	mu     sync.Mutex
	render []span
	apply  []span
}

func (t *timeline) add(list *[]span, s span) {
	t.mu.Lock()
	*list = append(*list, s)
	t.mu.Unlock()
}

// after returns the first span of list that starts at or after t0.
func (t *timeline) after(list *[]span, t0 time.Time) (span, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range *list {
		if !s.start.Before(t0) {
			return s, true
		}
	}
	return span{}, false
}

// applied waits until an Apply that started at or after t0 has returned,
// and returns when it did.
func (t *timeline) applied(ctx context.Context, t0 time.Time, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		if s, ok := t.after(&t.apply, t0); ok {
			return s.end, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no Apply returned within %v", timeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// describe lists the renders and Applies that started in [from, to), as
// offsets from from, for -v.
func (t *timeline) describe(from, to time.Time) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	for _, l := range []struct {
		name string
		list []span
	}{{"render", t.render}, {"apply", t.apply}} {
		for _, s := range l.list {
			if !s.start.Before(from) && s.start.Before(to) {
				fmt.Fprintf(&b, " %s@%s+%s (%s)", l.name, ms(s.start.Sub(from)), ms(s.end.Sub(s.start)), s.note)
			}
		}
	}
	return b.String()
}

// timedSyncer is the Follower's handler: the Syncer, with its renders timed.
type timedSyncer struct {
	*lbsync.Syncer
	t *timeline
}

func (s timedSyncer) Idle(st *events.State) {
	start := time.Now()
	seq := st.Seq
	s.Syncer.Idle(st)
	s.t.add(&s.t.render, span{start: start, end: time.Now(), note: fmt.Sprintf("seq %d", seq)})
}

// timedApplier is the Syncer's applier: HAProxyApplier, with Apply timed.
type timedApplier struct {
	*lbsync.HAProxyApplier
	t *timeline
}

func (a timedApplier) Apply(ctx context.Context, prev, next *lbsync.Result, plan lbsync.Plan) error {
	start := time.Now()
	err := a.HAProxyApplier.Apply(ctx, prev, next, plan)
	note := fmt.Sprintf("reload %v, commands %q", plan.Reload, plan.Commands)
	if err != nil {
		note += ", error " + err.Error()
	}
	a.t.add(&a.t.apply, span{start: start, end: time.Now(), note: note})
	return err
}

// breakdown splits event → serving latencies: publish → first render
// start (NATS, follower), that render, publish → first Apply start, that
// Apply (commands, then the config written; or check, write, reload),
// Apply start → first response through HAProxy (the change taking effect
// plus the probe noticing it).
type breakdown struct {
	toRender, render, toApply, apply, applyToServed []time.Duration
}

func (t *timeline) split(published, served []time.Time) breakdown {
	var b breakdown
	for i, t0 := range published {
		r, ok1 := t.after(&t.render, t0)
		a, ok2 := t.after(&t.apply, t0)
		if !ok1 || !ok2 {
			continue
		}
		b.toRender = append(b.toRender, r.start.Sub(t0))
		b.render = append(b.render, r.end.Sub(r.start))
		b.toApply = append(b.toApply, a.start.Sub(t0))
		b.apply = append(b.apply, a.end.Sub(a.start))
		b.applyToServed = append(b.applyToServed, served[i].Sub(a.start))
	}
	return b
}

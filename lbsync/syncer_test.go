package lbsync

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/atollhq/atoll/templates"
)

// recordingApplier records what the Syncer asks of HAProxy; failNext makes
// the next Apply fail as a bad config would.
type recordingApplier struct {
	mu       sync.Mutex
	plans    []Plan
	applied  []*Result
	failNext bool
}

func (a *recordingApplier) Apply(_ context.Context, prev, next *Result, plan Plan) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failNext {
		a.failNext = false
		return errors.New("haproxy -c: bad config")
	}
	a.plans = append(a.plans, plan)
	a.applied = append(a.applied, next)
	return nil
}

func (a *recordingApplier) snapshot() ([]Plan, []*Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Plan(nil), a.plans...), append([]*Result(nil), a.applied...)
}

func waitPlans(t *testing.T, a *recordingApplier, n int) []Plan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		plans, _ := a.snapshot()
		if len(plans) >= n {
			return plans
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d applies, want %d", len(plans), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSyncerAppliesMembershipAtOnceAndCoalescesReloads(t *testing.T) {
	a := &recordingApplier{}
	s := NewSyncer(Config{}, templates.MustDefault(), a, 300*time.Millisecond, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	w := newWorld()
	w.app("/web", []int{10001}, map[string]string{"HAPROXY_GROUP": "external"})
	w.scale("/web", 2, 31000)
	s.Idle(w.s)
	if plans := waitPlans(t, a, 1); !plans[0].Reload {
		t.Fatalf("first apply %+v, want a reload (nothing applied yet)", plans[0])
	}

	// Scaling within the slots: runtime commands, no reload, at once.
	w.scale("/web", 3, 31000)
	s.Idle(w.s)
	if plans := waitPlans(t, a, 2); plans[1].Reload || len(plans[1].Commands) == 0 {
		t.Fatalf("scale apply %+v, want commands and no reload", plans[1])
	}

	// Three new apps in a burst right after a reload: one reload, with
	// the newest state, after the minimum interval.
	for i, id := range []string{"/a", "/b", "/c"} {
		w.app(id, []int{10002 + i}, map[string]string{"HAPROXY_GROUP": "external"})
		s.Idle(w.s)
	}
	// Wait for the state with all four backends; had the burst not been
	// coalesced, reloads with one and two new apps would come before it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		plans, applied := a.snapshot()
		if n := len(applied); n > 0 && len(applied[n-1].Backends) == 4 {
			if n != 3 || !plans[2].Reload {
				t.Fatalf("the burst took applies %+v, want one reload after the scale", plans[2:])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no apply with the 4 backends: %d applies", len(applied))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSyncerKeepsAppliedStateWhenApplyFails(t *testing.T) {
	a := &recordingApplier{}
	s := NewSyncer(Config{}, templates.MustDefault(), a, time.Millisecond, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	w := newWorld()
	w.app("/web", []int{10001}, map[string]string{"HAPROXY_GROUP": "external"})
	w.scale("/web", 1, 31000)
	s.Idle(w.s)
	waitPlans(t, a, 1)

	a.mu.Lock()
	a.failNext = true
	a.mu.Unlock()
	w.app("/new", []int{10002}, map[string]string{"HAPROXY_GROUP": "external"})
	s.Idle(w.s) // fails: HAProxy keeps the first config
	// Wait for that failure: a newer state offered before Run took this
	// one would replace it, and the failure would hit the wrong apply.
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.mu.Lock()
		failed := !a.failNext
		a.mu.Unlock()
		if failed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failing apply never came")
		}
		time.Sleep(time.Millisecond)
	}
	w.scale("/web", 2, 31000)
	s.Idle(w.s)
	plans := waitPlans(t, a, 2)
	// Diffed against what HAProxy really runs, the new app still needs
	// its reload.
	if !plans[1].Reload {
		t.Fatalf("apply after a failed one: %+v, want the reload the failed apply owed", plans[1])
	}
}

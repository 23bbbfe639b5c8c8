package lbsync

import (
	"context"
	"log/slog"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/templates"
)

// Applier puts a rendered Result into HAProxy: runtime API commands, and
// for a reload the checked config, maps and the reload itself. It is the
// only part of the sidecar that touches HAProxy.
type Applier interface {
	Apply(ctx context.Context, prev, next *Result, plan Plan) error
}

// Syncer keeps HAProxy in line with the cluster state. It renders on the
// follower's goroutine once per burst of events (events.IdleHandler), or
// on every state an SSE source delivers, and hands the newest Result to
// Run, which applies it: membership changes at once through the runtime
// API, reloads no more often than MinReloadInterval. Results that were
// never applied are simply superseded: the newest state always wins.
type Syncer struct {
	config    Config
	templates *templates.Set
	applier   Applier
	minReload time.Duration
	log       *slog.Logger

	// rendered is the last render, the base of the next one (stable
	// slots, reused app text). Only the rendering goroutine touches it.
	rendered *Result
	// latest holds the newest render Run has not taken yet.
	latest chan *Result
}

// NewSyncer makes a Syncer. minReload <= 0 means 1 s.
func NewSyncer(cfg Config, set *templates.Set, applier Applier, minReload time.Duration, log *slog.Logger) *Syncer {
	if minReload <= 0 {
		minReload = time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	return &Syncer{config: cfg, templates: set, applier: applier, minReload: minReload, log: log, latest: make(chan *Result, 1)}
}

// Reset implements events.Handler; the render waits for Idle.
func (s *Syncer) Reset(*events.State) {}

// Applied implements events.Handler; the render waits for Idle.
func (s *Syncer) Applied(*events.State, events.Event) {}

// Idle implements events.IdleHandler: render what the burst changed.
func (s *Syncer) Idle(st *events.State) { s.Update(st) }

// Update renders st and offers the result to Run. A render that fails as a
// whole (a broken global template) is dropped: HAProxy keeps serving what
// it has. Apps left out of a render are logged; the rest goes ahead.
func (s *Syncer) Update(st *events.State) {
	next, err := RenderNext(s.rendered, st, s.config, s.templates)
	if err != nil {
		s.log.Error("haproxy config not rendered; the running config stays", "err", err)
		return
	}
	for _, e := range next.Errors {
		s.log.Warn("app left out of haproxy config", "err", e)
	}
	s.rendered = &next
	// Replace whatever Run has not taken yet.
	select {
	case <-s.latest:
	default:
	}
	s.latest <- &next
}

// Run applies rendered results until ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	var (
		applied    *Result
		lastReload time.Time
	)
	for {
		var next *Result
		select {
		case <-ctx.Done():
			return nil
		case next = <-s.latest:
		}
		plan := Diff(applied, next)
		// A reload too soon after the last one waits; whatever arrives
		// meanwhile replaces it, so a burst costs one reload.
		for plan.Reload && applied != nil {
			wait := s.minReload - time.Since(lastReload)
			if wait <= 0 {
				break
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case newer := <-s.latest:
				next = newer
				plan = Diff(applied, next)
			case <-t.C:
			}
			t.Stop()
		}
		if err := s.applier.Apply(ctx, applied, next, plan); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The applier left HAProxy as it was; the next state
			// change tries again from there.
			s.log.Error("haproxy update failed; the running config stays", "reload", plan.Reload, "err", err)
			continue
		}
		if plan.Reload {
			lastReload = time.Now()
		}
		applied = next
	}
}

package lbsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
//
// A config `haproxy -c` rejects is not the end of updates: Run blames the
// app ports its alerts point at, installs the rest, and keeps those ports
// out (quarantined) until their app's definition changes. A fault no app
// can be blamed for keeps the old config serving. Every such problem is
// logged, counted and handed to the Reporter once.
type Syncer struct {
	config    Config
	applier   Applier
	minReload time.Duration
	log       *slog.Logger

	// Set these before Update and Run are first called.

	// Metrics receives the counters; a private set when nil.
	Metrics *Metrics
	// ReconcileInterval is how often Run compares HAProxy's servers with
	// the applied Result, when the Applier is a Reconciler; 0 never.
	ReconcileInterval time.Duration
	// RetainState makes Idle keep a copy of each state, so that
	// SetTemplates renders a new set at once rather than at the next
	// event. Update (the SSE source's states) keeps the state it gets.
	RetainState bool

	initOnce sync.Once
	problems *problems

	// The render side: the follower's (or SSE source's) goroutine and
	// SetTemplates.
	renderMu   sync.Mutex
	templates  *templates.Set
	rendered   *Result       // the last render, the base of the next one
	state      *events.State // the last state, when retained
	eventTimes []time.Time   // events applied since the last render
	// touched are the apps whose tasks the events since the last render
	// changed; touchedAll says that something else may have changed
	// (an app, an agent, the whole state), so every app is looked at.
	touched    map[string]bool
	touchedAll bool
	sawEvents  bool // Applied ran since the last render

	qmu        sync.Mutex
	quarantine Quarantine

	// latest holds the newest render Run has not taken yet.
	latest chan *Result
}

// maxIsolationPasses bounds the `haproxy -c` runs of one apply: HAProxy
// reports every parse error at once, later checks one stage at a time.
const maxIsolationPasses = 5

// NewSyncer makes a Syncer. minReload <= 0 means 1 s.
func NewSyncer(cfg Config, set *templates.Set, applier Applier, minReload time.Duration, log *slog.Logger) *Syncer {
	if minReload <= 0 {
		minReload = time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	return &Syncer{config: cfg, templates: set, applier: applier, minReload: minReload, log: log,
		quarantine: Quarantine{}, latest: make(chan *Result, 1)}
}

func (s *Syncer) init() {
	s.initOnce.Do(func() {
		if s.Metrics == nil {
			s.Metrics = NewMetrics()
		}
		s.problems = newProblems(s.log, s.Metrics)
	})
}

// SetReporter makes r hear every new problem from now on.
func (s *Syncer) SetReporter(r Reporter) {
	s.init()
	s.problems.setReporter(r)
}

// Reset implements events.Handler: a new state, every app may differ; the
// render waits for Idle.
func (s *Syncer) Reset(*events.State) {
	s.renderMu.Lock()
	s.touchedAll = true
	s.renderMu.Unlock()
}

// Applied implements events.Handler: it notes which apps the event touched
// and when it happened (for the event→applied latency); the render waits
// for Idle.
func (s *Syncer) Applied(_ *events.State, e events.Event) {
	s.renderMu.Lock()
	defer s.renderMu.Unlock()
	s.sawEvents = true
	switch {
	case e.Type == events.TaskUpdated && e.Task != nil:
		if s.touched == nil {
			s.touched = map[string]bool{}
		}
		s.touched[e.Task.AppID] = true
	case e.Type == events.DeploymentUpdated, e.Type == events.DeploymentRemoved,
		e.Type == events.LeaderChanged, e.Type == events.Sync,
		e.Type == events.GroupUpdated, e.Type == events.GroupRemoved,
		e.Type == events.AppVersionAdded, e.Type == events.AppVersionRemoved,
		e.Type == events.GroupVersionAdded, e.Type == events.GroupVersionRemoved,
		e.Type == events.AppKept, e.Type == events.AppReleased:
		// nothing HAProxy serves (an app's or a group's history is not
		// its definition)
	default:
		s.touchedAll = true // apps, agents, task removals
	}
	if !e.Time.IsZero() {
		s.eventTimes = append(s.eventTimes, e.Time)
	}
}

// Idle implements events.IdleHandler: render what the burst changed.
func (s *Syncer) Idle(st *events.State) {
	if s.RetainState {
		s.update(st.Clone(), true, true)
		return
	}
	s.update(st, false, true)
}

// Update renders st and offers the result to Run; st must not change
// afterwards (the Syncer may keep it). A render that fails as a whole (a
// broken global template) is dropped: HAProxy keeps serving what it has.
// Apps left out of a render are reported; the rest goes ahead.
func (s *Syncer) Update(st *events.State) { s.update(st, true, false) }

// update renders st; keep retains it for SetTemplates, and fromEvents says
// the follower's events (Applied, Reset) tell what changed since the last
// render.
func (s *Syncer) update(st *events.State, keep, fromEvents bool) {
	s.init()
	s.renderMu.Lock()
	defer s.renderMu.Unlock()
	if keep {
		s.state = st
	}
	if len(s.eventTimes) == 0 {
		// No event says when this state changed: it is as old as its
		// arrival (an SSE refetch, a snapshot).
		s.eventTimes = append(s.eventTimes, time.Now())
	}
	touched := s.touched
	switch {
	case !fromEvents || s.touchedAll || !s.sawEvents:
		touched = nil // look at every app
	case touched == nil:
		touched = map[string]bool{} // events, but none HAProxy serves
	}
	s.touched, s.touchedAll, s.sawEvents = nil, false, false
	next, err := s.renderTouched(st, s.templates, s.quarantined(), touched)
	if err != nil {
		s.Metrics.ConfigRejections.Inc()
		s.problems.setGlobal("render", fmt.Errorf("haproxy config not rendered: %w", err))
		return
	}
	s.problems.setGlobal("render", nil)
	s.offer(st, next)
}

// render renders st with set, looking at every app; s.renderMu is held.
func (s *Syncer) render(st *events.State, set *templates.Set, q Quarantine) (*Result, error) {
	return s.renderTouched(st, set, q, nil)
}

// renderTouched renders st with set, looking only at the touched apps
// when touched is not nil (see renderNext); s.renderMu is held.
func (s *Syncer) renderTouched(st *events.State, set *templates.Set, q Quarantine, touched map[string]bool) (*Result, error) {
	start := time.Now()
	next, err := renderNext(s.rendered, st, s.config, set, q, touched)
	s.Metrics.Renders.Inc()
	s.Metrics.RenderSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	return &next, nil
}

// offer hands next to Run, replacing what Run has not taken yet (whose
// event times it inherits); s.renderMu is held.
func (s *Syncer) offer(st *events.State, next *Result) {
	s.pruneQuarantine(st)
	s.problems.setApps(next.Errors, s.isQuarantined)
	next.eventTimes, s.eventTimes = s.eventTimes, nil
	s.rendered = next
	select {
	case old := <-s.latest:
		next.eventTimes = append(old.eventTimes, next.eventTimes...)
	default:
	}
	s.latest <- next
}

// Run applies rendered results until ctx ends, and every
// ReconcileInterval repairs what drifted in HAProxy.
func (s *Syncer) Run(ctx context.Context) error {
	s.init()
	var (
		applied    *Result
		lastReload time.Time
		carry      []time.Time // event times of failed applies
		tick       <-chan time.Time
	)
	if _, ok := s.applier.(Reconciler); ok && s.ReconcileInterval > 0 {
		t := time.NewTicker(s.ReconcileInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		var next *Result
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			s.reconcile(ctx, applied)
			continue
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
				newer.eventTimes = append(next.eventTimes, newer.eventTimes...)
				next = newer
				plan = Diff(applied, next)
			case <-t.C:
			}
			t.Stop()
		}
		got, reloaded, err := s.apply(ctx, applied, next)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The applier left HAProxy as it was; the next state
			// change tries again from there.
			s.rejected(applied, next, err)
			if len(carry) < 10000 {
				carry = append(carry, next.eventTimes...)
			}
			continue
		}
		s.problems.setGlobal("apply", nil)
		now := time.Now()
		for _, ts := range [][]time.Time{carry, got.eventTimes} {
			for _, t := range ts {
				s.Metrics.EventApplied.Observe(now.Sub(t).Seconds())
			}
		}
		carry = nil
		if reloaded {
			lastReload = now
		}
		applied = got
	}
}

// apply applies next; when `haproxy -c` rejects it, it leaves out the app
// ports the alerts blame and tries again without them. It returns what
// HAProxy now serves.
func (s *Syncer) apply(ctx context.Context, applied, next *Result) (*Result, bool, error) {
	for pass := 1; ; pass++ {
		plan := Diff(applied, next)
		err := s.applier.Apply(ctx, applied, next, plan)
		if err == nil {
			return next, plan.Reload, nil
		}
		var ce *CheckError
		if pass >= maxIsolationPasses || !errors.As(err, &ce) {
			return nil, false, err
		}
		bad, _ := next.Blame(ParseAlerts(ce.Output), ce.Path)
		if len(bad) == 0 {
			return nil, false, err
		}
		s.leaveOut(next, bad)
		w, werr := next.Without(bad)
		if werr != nil {
			return nil, false, errors.Join(err, werr)
		}
		next = &w
	}
}

// rejected reports a Result that could not be applied. When it was
// rendered with a new template set that `haproxy -c` rejects, the set is
// refused and the one HAProxy serves is used again.
func (s *Syncer) rejected(applied, next *Result, err error) {
	var ce *CheckError
	if errors.As(err, &ce) && applied != nil && next.set != applied.set {
		s.revertTemplates(next.set, applied.set, ce)
		return
	}
	s.Metrics.ConfigRejections.Inc()
	s.problems.setGlobal("apply", stableError(err))
}

// stableError is err without what differs between two runs of the same
// check (temp file name, pid), so that a repeat is recognised.
func stableError(err error) error {
	var ce *CheckError
	if !errors.As(err, &ce) {
		return err
	}
	return errors.New("haproxy -c rejects the config: " + alertText(ParseAlerts(ce.Output), ce.Path))
}

// reconcile repairs the drift between HAProxy and applied.
func (s *Syncer) reconcile(ctx context.Context, applied *Result) {
	rec, ok := s.applier.(Reconciler)
	if !ok || applied == nil {
		return
	}
	r, err := rec.Reconcile(ctx, applied)
	if r.Commands > 0 {
		s.Metrics.Repairs.WithLabelValues("command").Add(float64(r.Commands))
	}
	if r.Reloaded {
		s.Metrics.Repairs.WithLabelValues("reload").Inc()
	}
	if r.Restarted {
		s.Metrics.Repairs.WithLabelValues("restart").Inc()
	}
	if r.Commands > 0 || r.Reloaded || r.Restarted {
		s.log.Warn("haproxy had drifted from the applied config; repaired", "commands", r.Commands, "reloaded", r.Reloaded, "restarted", r.Restarted)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Error("haproxy reconcile failed", "err", err)
	}
}

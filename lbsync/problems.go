package lbsync

import (
	"log/slog"
	"sync"
)

// Reporter hears each new problem once: an app port left out of the
// config, or (AppID "", PortIndex -1) a template set refused or a config
// that could not be installed. It runs on the Syncer's goroutines and must
// return promptly; the NATS publisher of `atoll lb` is one.
type Reporter func(AppError)

// problems remembers what has been reported, so that a problem is logged,
// counted and reported when it appears or changes, not on every render
// that still has it, and logged again once it is gone.
type problems struct {
	mu      sync.Mutex
	apps    map[appKey]string // app port → error
	global  map[string]string // kind ("templates", "render", "check") → error
	report  Reporter
	log     *slog.Logger
	metrics *Metrics
}

type appKey struct {
	id   string
	port int
}

func newProblems(log *slog.Logger, m *Metrics) *problems {
	return &problems{apps: map[appKey]string{}, global: map[string]string{}, log: log, metrics: m}
}

func (p *problems) setReporter(r Reporter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.report = r
}

// setApps makes errs the app problems of the current config. A problem
// missing from errs is forgotten unless held says to keep it (an app
// port quarantined after errs were rendered).
func (p *problems) setApps(errs []AppError, held func(id string, port int) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := make(map[appKey]string, len(errs))
	for _, e := range errs {
		now[appKey{e.AppID, e.PortIndex}] = e.Err
		p.newApp(e)
	}
	for k, err := range p.apps {
		if _, ok := now[k]; ok {
			continue
		}
		if held != nil && held(k.id, k.port) {
			now[k] = err
			continue
		}
		p.log.Info("app back in the haproxy config", "app", k.id, "port", k.port)
	}
	p.apps = now
	p.metrics.LeftOut.Set(float64(len(now)))
}

// addApps adds app problems found outside a render (by `haproxy -c`).
func (p *problems) addApps(errs []AppError) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range errs {
		p.newApp(e)
		p.apps[appKey{e.AppID, e.PortIndex}] = e.Err
	}
	p.metrics.LeftOut.Set(float64(len(p.apps)))
}

// newApp reports e unless it is already known; p.mu is held.
func (p *problems) newApp(e AppError) {
	if old, ok := p.apps[appKey{e.AppID, e.PortIndex}]; ok && old == e.Err {
		return
	}
	p.log.Warn("app left out of the haproxy config", "app", e.AppID, "port", e.PortIndex, "err", e.Err)
	p.metrics.LeftOutTotal.Inc()
	if p.report != nil {
		p.report(e)
	}
}

// setGlobal records the problem of one kind; nil clears it.
func (p *problems) setGlobal(kind string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old, had := p.global[kind]
	if err == nil {
		if had {
			delete(p.global, kind)
			p.log.Info("haproxy config problem cleared", "kind", kind, "was", old)
		}
		return
	}
	if had && old == err.Error() {
		return
	}
	p.global[kind] = err.Error()
	p.log.Error("haproxy config problem; the running config stays", "kind", kind, "err", err)
	if p.report != nil {
		p.report(AppError{PortIndex: -1, Err: err.Error()})
	}
}

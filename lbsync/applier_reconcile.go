package lbsync

import (
	"context"
	"errors"
	"fmt"
)

// Reconcile implements Reconciler on the HAProxy this applier runs: a
// master that has exited is started again on want's config; no worker, a
// runtime API that does not answer, or a backend or server missing from
// "show servers state" means a reload (the file on disk carries want's
// slots); any other drift is set right through the runtime API.
func (a *HAProxyApplier) Reconcile(ctx context.Context, want *Result) (Repairs, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var r Repairs
	if a.proc == nil {
		return r, nil // nothing applied yet: the first Apply starts it
	}
	cfg := a.Config.withDefaults()
	select {
	case <-a.proc.Done():
		maps := map[string]string{cfg.MapPath: want.HostMap, cfg.PathMapPath: want.PathMap}
		if err := a.diskLocked().writeNow(ctx, want.Config, maps); err != nil {
			return r, fmt.Errorf("restart haproxy: %w", err)
		}
		a.stop()
		if err := a.start(ctx); err != nil {
			return r, err
		}
		r.Restarted = true
		return r, nil
	default:
	}
	info, err := a.proc.ShowProc(ctx)
	if err != nil {
		return r, fmt.Errorf("reconcile: %w", err)
	}
	var cmds []string
	reload := len(info.Workers) == 0
	if !reload {
		st, err := a.runtime.ShowServersState(ctx)
		if err != nil {
			reload = true // the worker's socket is gone: a new worker brings it back
		} else {
			cmds, reload = Drift(want, st)
		}
	}
	if !reload && len(cmds) > 0 {
		r.Commands = len(cmds)
		if err := a.exec(ctx, cmds); err == nil {
			return r, nil
		}
		reload = true // a reload repairs whatever the commands could not
	}
	if !reload {
		return r, nil
	}
	// A runtime-only Apply may have failed to write the file: write it
	// before the reload reads it.
	maps := map[string]string{cfg.MapPath: want.HostMap, cfg.PathMapPath: want.PathMap}
	if err := a.diskLocked().writeNow(ctx, want.Config, maps); err != nil {
		return r, fmt.Errorf("reconcile: %w", err)
	}
	if err := a.reload(ctx); err != nil {
		return r, errors.Join(errors.New("reconcile reload"), err)
	}
	r.Reloaded = true
	return r, nil
}

var _ Reconciler = (*HAProxyApplier)(nil)

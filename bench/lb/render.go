package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/lbsync"
	"github.com/atollhq/atoll/templates"
)

// renderFigures are the render and `haproxy -c` times at one cluster size.
type renderFigures struct {
	apps, tasks  int
	configBytes  int
	cold         []time.Duration // Render from scratch
	incremental  []time.Duration // RenderNext after one task moved
	incrReload   bool            // whether that change needed a reload (it should not)
	incrCommands int             // runtime API commands it needed
	check        []time.Duration // haproxy -c -f on the written config
	renderErrors int
}

// measureRender renders a cluster of apps × perApp tasks runs times from
// scratch, then runs times incrementally after one task changed, and times
// `haproxy -c` on the result, all on files in dir.
func measureRender(ctx context.Context, bin, dir string, apps, perApp, runs int) (renderFigures, error) {
	f := renderFigures{apps: apps, tasks: apps * perApp}
	cs := clusterChanges(apps, perApp,
		func(i int) int { return 10000 + i },
		func(i, k int) int { return 31000 + k })
	st, err := buildState(cs)
	if err != nil {
		return f, err
	}
	sub := filepath.Join(dir, fmt.Sprintf("render%d", apps))
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return f, err
	}
	cfg := lbsync.Config{BindAddr: "127.0.0.1", HTTPPort: 8080, StatsBind: "127.0.0.1:9090",
		SocketPath: filepath.Join(sub, "admin.sock"), MapPath: filepath.Join(sub, "hosts.map"), PathMapPath: filepath.Join(sub, "paths.map")}
	set := templates.MustDefault()

	var base lbsync.Result
	for r := 0; r < runs; r++ {
		start := time.Now()
		res, err := lbsync.Render(st, cfg, set)
		f.cold = append(f.cold, time.Since(start))
		if err != nil {
			return f, fmt.Errorf("render %d apps: %w", apps, err)
		}
		base = res
	}
	f.renderErrors = len(base.Errors)
	f.configBytes = len(base.Config)

	// One task of app 0 moves to another port: what every scale event,
	// crash or rolling restart costs.
	moved := st.Clone()
	old := moved.Tasks[taskID(0, 0)]
	if err := moved.Apply(events.PutTask(benchTask(0, taskID(0, 0), 0, events.TaskKilled)).Stamp(moved, 1, time.Now())); err != nil {
		return f, err
	}
	nt := benchTask(0, taskID(0, perApp), old.Ports[0]+100, events.TaskRunning)
	if err := moved.Apply(events.PutTask(nt).Stamp(moved, 1, time.Now())); err != nil {
		return f, err
	}
	for r := 0; r < runs; r++ {
		start := time.Now()
		next, err := lbsync.RenderNext(&base, moved, cfg, set)
		f.incremental = append(f.incremental, time.Since(start))
		if err != nil {
			return f, fmt.Errorf("incremental render %d apps: %w", apps, err)
		}
		plan := lbsync.Diff(&base, &next)
		f.incrReload, f.incrCommands = plan.Reload, len(plan.Commands)
	}

	path := filepath.Join(sub, "haproxy.cfg")
	for p, text := range map[string]string{path: base.Config, cfg.MapPath: base.HostMap, cfg.PathMapPath: base.PathMap} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return f, err
		}
	}
	for r := 0; r < runs; r++ {
		start := time.Now()
		err := lbsync.CheckWithHAProxy(ctx, bin, path)
		f.check = append(f.check, time.Since(start))
		if err != nil {
			return f, fmt.Errorf("haproxy -c at %d apps: %w", apps, err)
		}
	}
	return f, nil
}

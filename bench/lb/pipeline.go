package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/bench/internal/leader"
	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/natsenv"
)

// pipeline runs the latency and wrk figures on one sidecar following a
// cluster of o.apps apps over an embedded NATS server.
func pipeline(ctx context.Context, o options, dir string, res *results) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	env, err := natsenv.Start(filepath.Join(dir, "auth"), o.natsTLS)
	if err != nil {
		return err
	}
	defer env.Shutdown()
	leaderNC, err := env.Connect(natsauth.RoleMaster, "bench-leader")
	if err != nil {
		return fmt.Errorf("connect leader to nats: %w", err)
	}
	defer leaderNC.Close()

	l, err := leader.New(leaderNC)
	if err != nil {
		return err
	}
	defer l.Close()
	wg.Add(1)
	go func() { defer wg.Done(); l.Tick(ctx) }()

	fleet, err := startBackends(ctx, "fleet", o.fleet)
	if err != nil {
		return err
	}
	pool, err := startBackends(ctx, "scaled", o.scale.maxTasks)
	if err != nil {
		return err
	}
	ports, err := servicePorts(o.portBase, o.apps+o.newApps+1)
	if err != nil {
		return err
	}

	// The cluster is in the leader's state before the sidecar starts: it
	// arrives as one snapshot, as when a node joins a running cluster.
	start := time.Now()
	w := &world{l: l}
	if err := l.Commit(events.PutAgent(benchAgent())); err != nil {
		return err
	}
	for i := 0; i < o.apps; i++ {
		bs := make([]*backend, o.perApp)
		for k := range bs {
			bs[k] = fleet[(i*o.perApp+k)%len(fleet)]
		}
		_, cs := w.addApp(i, ports[i], bs)
		if err := l.Commit(cs...); err != nil {
			return err
		}
	}
	sc, err := startLB(ctx, o, env, dir)
	if err != nil {
		return err
	}
	defer sc.stop()
	pr := newProber(o.poll, false)
	last := w.apps[len(w.apps)-1]
	if _, err := pr.waitFor(ctx, last.port, last.ids(), 1, time.Now().Add(2*time.Minute)); err != nil {
		return fmt.Errorf("the cluster never got served: %w", err)
	}
	fmt.Printf("sidecar serving %d apps × %d tasks from one snapshot in %s\n", o.apps, o.perApp, time.Since(start).Round(time.Millisecond))
	// A follow-up render (the snapshot's Idle) may still be on its way.
	if err := sleep(ctx, o.minReload+200*time.Millisecond); err != nil {
		return err
	}

	start = time.Now()
	if res.task, err = measureTaskChanges(ctx, w, sc, pr, fleet, o.taskChanges, o.settle); err != nil {
		return err
	}
	fmt.Printf("%d task changes in %s\n", len(res.task.lat), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	if res.stale, err = measureStale(ctx, w, pr, fleet, w.apps[:o.apps], o.staleApps, 200*time.Millisecond); err != nil {
		return err
	}
	fmt.Printf("%d task moves with a keep-alive client in %s\n", res.stale.moves, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	if res.newApp, err = measureNewApps(ctx, w, sc, pr, fleet, ports[o.apps:o.apps+o.newApps], o.perApp, o.minReload, o.verbose); err != nil {
		return err
	}
	fmt.Printf("%d new apps in %s\n", len(res.newApp.lat), time.Since(start).Round(time.Millisecond))
	if err := sleep(ctx, o.minReload+200*time.Millisecond); err != nil {
		return err
	}

	start = time.Now()
	if res.scale, err = measureScale(ctx, w, sc, pr, pool, ports[o.apps+o.newApps], o.scale); err != nil {
		return err
	}
	fmt.Printf("%d scale events under wrk in %s\n", res.scale.events, time.Since(start).Round(time.Millisecond))
	res.apps = o.apps
	res.sidecar = "`atoll lb` (own process)"
	if o.inline {
		res.sidecar = "Follower → Syncer → HAProxyApplier inside the benchmark process"
	}
	return nil
}

// startLB starts the sidecar under test: `atoll lb` in its own process, or
// with -inline the same parts in this one.
func startLB(ctx context.Context, o options, env *natsenv.Env, dir string) (lbUnderTest, error) {
	if !o.inline {
		args, err := env.Args(natsauth.RoleSidecar, "bench")
		if err != nil {
			return nil, err
		}
		return startProcessSidecar(ctx, o.atoll, args, o.haproxy, dir, o.minReload)
	}
	nc, err := env.Connect(natsauth.RoleSidecar, "bench")
	if err != nil {
		return nil, fmt.Errorf("connect sidecar to nats: %w", err)
	}
	sc, err := startInlineSidecar(ctx, nc, o.haproxy, dir, o.minReload)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return closeAfter{sc, nc}, nil
}

// closeAfter closes the inline sidecar's NATS connection once it stopped.
type closeAfter struct {
	*inlineSidecar
	nc *nats.Conn
}

func (c closeAfter) stop() {
	c.inlineSidecar.stop()
	c.nc.Close()
}

package master

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/simagent"
)

// BenchmarkLaunchPass times a reconcile pass that launches 1,000 tasks on
// 100 simulated agents over a real NATS server: from the pass's start
// until the master has every launch's ack, and from the pass's store write
// until then (the requests alone). It reports the requests the master
// sent to agents per pass.
func BenchmarkLaunchPass(b *testing.B) {
	const agents, perPass = 100, 1000
	ns := eventstest.StartNATS(b)
	m, err := New(Config{
		NC: eventstest.Connect(b, ns), Store: &MemStore{}, AgentTimeout: time.Minute,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	started, err := m.establish()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var requests atomic.Int64
	var sends sync.WaitGroup
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.commitLoop(ctx, func(send func(context.Context)) {
			requests.Add(1)
			sends.Add(1)
			go func() { defer sends.Done(); send(ctx) }()
		})
	}()
	b.Cleanup(func() { cancel(); <-done; sends.Wait() })
	if err := started.wait(); err != nil {
		b.Fatal(err)
	}
	subs, err := m.subscribe()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	})
	fleet, err := simagent.StartFleet(ctx, func(node string) (*nats.Conn, error) {
		return nats.Connect(ns.ClientURL(), ns.Creds(b, natsauth.RoleAgent, node).Options()...)
	}, agents, "sim-", simagent.Config{
		Resources: events.Resources{Cpus: 64, Mem: 256 * 1024, Disk: 1024 * 1024, Ports: []events.PortRange{{Begin: 31000, End: 41000}}},
	})
	if fleet != nil {
		b.Cleanup(fleet.Stop)
	}
	if err != nil {
		b.Fatal(err)
	}
	waitFor(b, 30*time.Second, "agents registered", func() bool {
		n := 0
		m.View(func(s *events.State) { n = len(s.Agents) })
		return n == agents
	})

	launched := 0
	var took, sending, cpu time.Duration
	var sent int64
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		app, err := appForCreate(fmt.Appendf(nil, `{"id": "/bench/app%d", "cmd": "sleep 1000", "instances": %d, "cpus": 0.001, "mem": 1}`, i, perPass), testLimits)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.CreateApp(app); err != nil {
			b.Fatal(err)
		}
		before := requests.Load()
		b.StartTimer()
		cpu0 := cpuTime(b)
		start := time.Now()
		m.reconcileOnce()
		m.mu.Lock()
		d := m.durableLocked()
		m.mu.Unlock()
		if err := d.wait(); err != nil {
			b.Fatal(err)
		}
		durable := time.Now()
		launched += perPass
		waitFor(b, time.Minute, "launches acked", func() bool {
			m.live.mu.Lock()
			defer m.live.mu.Unlock()
			return len(m.live.acked) >= launched
		})
		took += time.Since(start)
		sending += time.Since(durable)
		cpu += cpuTime(b) - cpu0
		sent += requests.Load() - before
	}
	passes := float64(launched / perPass)
	b.ReportMetric(float64(sent)/passes, "requests/pass")
	b.ReportMetric(float64(took.Milliseconds())/passes, "ms/pass")
	b.ReportMetric(float64(sending.Milliseconds())/passes, "ms-durable-to-acked/pass")
	// CPU of the whole process (master, NATS server, agents): what the
	// pass costs a shared machine, less noisy there than wall time.
	b.ReportMetric(float64(cpu.Milliseconds())/passes, "cpu-ms/pass")
}

// cpuTime is the process's CPU time so far (user and system).
func cpuTime(b testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// waitFor polls cond until it holds, or fails after timeout.
func waitFor(b testing.TB, timeout time.Duration, what string, cond func() bool) {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("no %s after %s", what, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

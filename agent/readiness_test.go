package agent

import (
	"net/http"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// The agent probes a task's readiness check from its start and tells the
// master once, when a ready status comes back, and not before.
func TestReadinessReportedOnceReady(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	port, status := healthServer(t, cfg.AdvertiseIP)
	status.Store(http.StatusServiceUnavailable)

	req := shellTask("ready.1", "exec sleep 300")
	req.Task.Ports = []int{port}
	req.Readiness = &events.ReadinessProbe{Protocol: "HTTP", Path: "/health", Port: port,
		Interval: 100 * time.Millisecond, Timeout: time.Second, Codes: []int{200, 204}}
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	readyUpdates := func() (n int) {
		for _, u := range env.master.statusesOf("ready.1") {
			if u.Ready != nil && *u.Ready {
				n++
			}
		}
		return n
	}
	env.master.waitStatus(t, "ready.1", events.TaskRunning)
	// Several probes answer 503 meanwhile: not ready.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if n := readyUpdates(); n != 0 {
			t.Fatalf("ready reported while the check answers 503")
		}
		time.Sleep(20 * time.Millisecond)
	}
	status.Store(http.StatusNoContent)
	waitFor(t, 10*time.Second, "the ready update", func() bool { return readyUpdates() == 1 })
}

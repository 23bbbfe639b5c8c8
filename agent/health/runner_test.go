package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// TestRunner runs two checks of one task against a server that starts
// failing and recovers, with 50ms "seconds".
func TestRunner(t *testing.T) {
	var status atomic.Int32
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()

	reports := make(chan Report, 100)
	r := &Runner{
		TaskID: "web.1",
		Checks: []events.HealthCheck{
			{Protocol: "TCP", PortIndex: intp(0), IntervalSeconds: 1, TimeoutSeconds: 20},
			{Protocol: "HTTP", Path: "/health", PortIndex: intp(0), IntervalSeconds: 1, TimeoutSeconds: 20, MaxConsecutiveFailures: 2},
		},
		Target:  Target{Host: "127.0.0.1", Ports: []int{serverPort(t, srv)}},
		Started: time.Now(),
		Report:  func(rep Report) { reports <- rep },
		second:  50 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()

	next := func(what string) Report {
		t.Helper()
		select {
		case rep := <-reports:
			if len(rep.Results) != 2 || rep.Results[0].TaskID != "web.1" || rep.Results[1].TaskID != "web.1" {
				t.Fatalf("%s: results %+v, want two for web.1", what, rep.Results)
			}
			return rep
		case <-time.After(10 * time.Second):
			t.Fatalf("no report: %s", what)
		}
		panic("unreachable")
	}
	// Both checks come alive, in either order: one report each, the
	// second one with the verdict.
	next("first check alive")
	rep := next("second check alive")
	if fmtBool(rep.Healthy) != "true" || !rep.Results[0].Alive || !rep.Results[1].Alive {
		t.Fatalf("both alive: %+v", rep)
	}

	status.Store(500)
	rep = next("HTTP check dead")
	if fmtBool(rep.Healthy) != "false" || rep.LimitReached || !rep.Results[0].Alive {
		t.Fatalf("HTTP dead: %+v", rep)
	}
	if res := rep.Results[1]; res.Alive || res.ConsecutiveFailures != 1 || !strings.Contains(res.LastFailureCause, "500") {
		t.Fatalf("HTTP dead: %+v", res)
	}
	rep = next("HTTP check at its limit")
	if !rep.LimitReached || rep.Results[1].ConsecutiveFailures != 2 || fmtBool(rep.Healthy) != "false" {
		t.Fatalf("limit: %+v", rep)
	}

	status.Store(200)
	rep = next("HTTP check alive again")
	if fmtBool(rep.Healthy) != "true" || rep.Results[1].ConsecutiveFailures != 0 || rep.Results[1].FirstSuccess == nil {
		t.Fatalf("recovered: %+v", rep)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	select {
	case rep := <-reports:
		t.Errorf("report after the failures stopped changing anything: %+v", rep)
	default:
	}
}

// TestRunnerDelay checks that a check waits delaySeconds before its first
// probe while another check of the task runs at once.
func TestRunnerDelay(t *testing.T) {
	var delayedHits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/delayed" {
			delayedHits.Add(1)
		}
	}))
	defer srv.Close()
	reports := make(chan Report, 10)
	r := &Runner{
		TaskID: "web.1",
		Checks: []events.HealthCheck{
			{Protocol: "HTTP", Path: "/now", IntervalSeconds: 1, TimeoutSeconds: 1},
			{Protocol: "HTTP", Path: "/delayed", IntervalSeconds: 1, TimeoutSeconds: 1, DelaySeconds: 3600},
		},
		Target:  Target{Host: "127.0.0.1", Ports: []int{serverPort(t, srv)}},
		Started: time.Now(),
		Report:  func(rep Report) { reports <- rep },
		second:  50 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	select {
	case rep := <-reports:
		if !rep.Results[0].Alive || rep.Healthy != nil {
			t.Errorf("first report: %+v, want check 0 alive, verdict unknown", rep)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no report from the undelayed check")
	}
	cancel()
	<-done
	if n := delayedHits.Load(); n != 0 {
		t.Errorf("the delayed check ran %d times", n)
	}
}

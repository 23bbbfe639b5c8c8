package lbsync

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/atollhq/atoll/templates"
)

// value reads a counter or gauge, or a histogram's sample count.
func value(c prometheus.Metric) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		return -1
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	if d.Histogram != nil {
		return float64(d.Histogram.GetSampleCount())
	}
	return d.Gauge.GetValue()
}

// runSyncer runs s until the test ends and collects what it reports.
func runSyncer(t *testing.T, s *Syncer) <-chan AppError {
	t.Helper()
	reports := make(chan AppError, 64)
	s.SetReporter(func(e AppError) { reports <- e })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = s.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return reports
}

func waitReport(t *testing.T, reports <-chan AppError, match func(AppError) bool) AppError {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case e := <-reports:
			if match(e) {
				return e
			}
		case <-deadline:
			t.Fatal("the problem was never reported")
		}
	}
}

func noReport(t *testing.T, reports <-chan AppError) {
	t.Helper()
	select {
	case e := <-reports:
		t.Fatalf("reported again: %+v", e)
	default:
	}
}

// TestSyncerLeavesOutAppHAProxyRejects: an app whose label passes the
// render and config-parser but not `haproxy -c` is left out and reported
// once; the other app is served; fixing the label brings it in.
func TestSyncerLeavesOutAppHAProxyRejects(t *testing.T) {
	h := newLBHarness(t)
	h.tasks("t1")
	badSvc := freePort(t)
	labels := map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_BIND_ADDR": "127.0.0.1", "HAPROXY_0_MODE": "http",
		"HAPROXY_0_BIND_OPTIONS": "no-such-keyword"}
	h.w.app("/bad", []int{badSvc}, labels)
	h.w.task("/bad", "b1", "a1", backendServer(t, "b1"))
	m := NewMetrics()
	h.a.Metrics = m
	s := NewSyncer(h.cfg, templates.MustDefault(), h.a, 10*time.Millisecond, nil)
	s.Metrics = m
	reports := runSyncer(t, s)

	s.Update(h.w.s.Clone())
	e := waitReport(t, reports, func(e AppError) bool { return e.AppID == "/bad" })
	if e.PortIndex != 0 || !strings.Contains(e.Err, "no-such-keyword") || !strings.Contains(e.Err, "haproxy.cfg:") {
		t.Errorf("report %+v: want port 0 and HAProxy's alert", e)
	}
	h.waitServed(h.svc, "t1")
	if err := h.a.WaitWritten(); err != nil {
		t.Fatal(err)
	}
	disk, _ := os.ReadFile(h.a.ConfigPath)
	if !strings.Contains(string(disk), "backend echo_") || strings.Contains(string(disk), "bad_") {
		t.Fatalf("config on disk:\n%s", disk)
	}
	if got := value(m.LeftOut); got != 1 {
		t.Errorf("apps left out gauge %v, want 1", got)
	}

	// More changes flow, with a reload, and the bad app is not checked
	// or reported again while its definition stays.
	reloads := h.a.Process().Reloads()
	otherSvc := freePort(t)
	h.w.app("/other", []int{otherSvc}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_BIND_ADDR": "127.0.0.1", "HAPROXY_0_MODE": "http"})
	h.w.task("/other", "o1", "a1", backendServer(t, "o1"))
	h.tasks("t1", "t2")
	s.Update(h.w.s.Clone())
	h.waitServed(otherSvc, "o1")
	h.waitServed(h.svc, "t1", "t2")
	if h.a.Process().Reloads() != reloads+1 {
		t.Errorf("reloads %d → %d, want one", reloads, h.a.Process().Reloads())
	}
	noReport(t, reports)

	// Fixed: the app comes in.
	fixed := map[string]string{}
	for k, v := range labels {
		fixed[k] = v
	}
	delete(fixed, "HAPROXY_0_BIND_OPTIONS")
	h.w.app("/bad", []int{badSvc}, fixed)
	s.Update(h.w.s.Clone())
	h.waitServed(badSvc, "b1")
	h.waitServed(h.svc, "t1", "t2")
	deadline := time.Now().Add(5 * time.Second)
	for value(m.LeftOut) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := value(m.LeftOut); got != 0 {
		t.Errorf("apps left out gauge %v after the fix, want 0", got)
	}
	if value(m.LeftOutTotal) != 1 || value(m.Reloads) < 2 || value(m.Renders) < 3 || value(m.EventApplied) < 2 {
		t.Errorf("left out total %v, reloads %v, renders %v, latencies %v",
			value(m.LeftOutTotal), value(m.Reloads), value(m.Renders), value(m.EventApplied))
	}
}

// TestSyncerRefusesTemplateSets: a set that does not parse, one whose
// render fails as a whole and one `haproxy -c` rejects are each refused
// and reported; the set in use keeps rendering new apps; a good set is
// taken.
func TestSyncerRefusesTemplateSets(t *testing.T) {
	h := newLBHarness(t)
	h.tasks("t1")
	s := NewSyncer(h.cfg, templates.MustDefault(), h.a, 10*time.Millisecond, nil)
	reports := runSyncer(t, s)
	s.Update(h.w.s.Clone())
	h.waitServed(h.svc, "t1")
	worker := h.a.Process().WorkerPID()

	load := func(name, text string) (*templates.Set, error) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return templates.Load(dir)
	}
	global := func(e AppError) bool { return e.AppID == "" }

	// Does not parse: the watcher reports it through RefuseTemplates.
	if _, err := load(templates.BackendHead, "backend {{.Backend"); err == nil {
		t.Fatal("broken template parsed")
	} else {
		s.RefuseTemplates(err)
	}
	waitReport(t, reports, global)

	// Renders nothing: HAPROXY_HEAD reads a field that does not exist.
	noField, err := load(templates.Head, "global\n  maxconn {{.NoSuchField}}\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTemplates(noField); err == nil || !strings.Contains(err.Error(), "NoSuchField") {
		t.Fatalf("SetTemplates: %v", err)
	}
	if e := waitReport(t, reports, global); !strings.Contains(e.Err, "NoSuchField") {
		t.Errorf("report %+v", e)
	}

	// Passes config-parser, rejected by haproxy -c with no app to blame
	// (a bind option of the :80 frontend): refused at apply.
	front, _ := templates.Default(templates.HTTPFrontendHead)
	badHead, err := load(templates.HTTPFrontendHead, strings.Replace(front, "{{.HTTPPort}}", "{{.HTTPPort}} no-such-directive", 1))
	if err != nil {
		t.Fatal(err)
	}
	s.RetainState = true // so the refused set is replaced at once
	s.Update(h.w.s.Clone())
	if err := s.SetTemplates(badHead); err != nil {
		t.Fatal(err)
	}
	if e := waitReport(t, reports, global); !strings.Contains(e.Err, "no-such-directive") {
		t.Errorf("report %+v", e)
	}
	if h.a.Process().WorkerPID() != worker {
		t.Error("a refused set reloaded HAProxy")
	}

	// The set in use still serves new apps.
	otherSvc := freePort(t)
	h.w.app("/other", []int{otherSvc}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_BIND_ADDR": "127.0.0.1", "HAPROXY_0_MODE": "http"})
	h.w.task("/other", "o1", "a1", backendServer(t, "o1"))
	s.Update(h.w.s.Clone())
	h.waitServed(otherSvc, "o1")
	_ = h.a.WaitWritten()
	disk, _ := os.ReadFile(h.a.ConfigPath)
	if strings.Contains(string(disk), "no-such-directive") {
		t.Error("the refused set reached the disk")
	}

	// A good set is taken (and the reload it needs is over before the
	// test stops HAProxy: a stop signal during the master's re-exec is lost).
	reloads := h.a.Process().Reloads()
	good, err := load(templates.FrontendBackendGlue, "  default_backend {{.Backend}}\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTemplates(good); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		disk, _ := os.ReadFile(h.a.ConfigPath)
		if strings.Contains(string(disk), "default_backend other_") && h.a.Process().Reloads() > reloads {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the good set never reached the disk:\n%s", disk)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.waitServed(otherSvc, "o1")
	if got := value(s.Metrics.TemplateRefusals); got != 3 {
		t.Errorf("template refusals %v, want 3", got)
	}
}

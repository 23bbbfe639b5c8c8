package master

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkReconcileScaleUpPasses100k is every reconcile pass of a
// 10,000-instance scale-up at 100,000 tasks, from the PUT until all are
// staged: the passes after the first hold the lock while the app holds
// thousands of staging tasks, and the committer waits for them.
func BenchmarkReconcileScaleUpPasses100k(b *testing.B) {
	m, h := newBenchMaster(b)
	m.cfg.MaxInstancesPerApp = 10000 // bench/scale's --max-instances-per-app
	call := func(method, path, body string, want int) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
	}
	var cpu cpuMeter
	passes, n := 0, 0
	var longest time.Duration
	for b.Loop() {
		b.StopTimer()
		// An app of its own each time: the tasks of the last stay (no
		// agent acks their kills), 10,000 more each run.
		id := fmt.Sprintf("/scale/up%d", n)
		call(http.MethodPost, "/v2/apps", `{"id":"`+id+`","cmd":"sleep 1000000","instances":10000,"cpus":0.01,"mem":1,"portDefinitions":[{"port":0,"protocol":"tcp"}]}`, http.StatusCreated)
		runtimeGC()
		b.StartTimer()
		cpu.start()
		for {
			start := time.Now()
			m.reconcileOnce()
			longest = max(longest, time.Since(start))
			passes++
			m.mu.Lock()
			staged := m.state.CountTasksOf(id)
			d := m.durableLocked()
			m.mu.Unlock()
			if err := d.wait(); err != nil {
				b.Fatal(err)
			}
			if staged >= 10000 {
				break
			}
		}
		cpu.stop()
		n++
		b.StopTimer()
		captured.Range(func(_, c any) bool { c.(*capturedSends).take(); return true })
		b.StartTimer()
	}
	cpu.report(b, n)
	b.ReportMetric(float64(passes)/float64(n), "passes/op")
	b.ReportMetric(float64(longest.Milliseconds()), "longest-pass-ms")
}

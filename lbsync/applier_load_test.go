package lbsync

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestApplierUnderLoad: scaling (runtime API) and reloads under continuous
// keep-alive and new-connection load give zero failed requests.
func TestApplierUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	h := newLBHarness(t)
	h.tasks("t0", "t1", "t2")
	if _, err := h.apply(nil); err != nil {
		t.Fatal(err)
	}
	h.waitServed(h.svc, "t0", "t1", "t2")
	p := h.a.Process()

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	url := "http://127.0.0.1:" + strconv.Itoa(h.svc) + "/"
	for i := 0; i < 4; i++ {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: i%2 == 0}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := c.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	sizes := []int{6, 2, 5, 3, 7, 1, 4}
	for i, n := range sizes {
		var ids []string
		for j := 0; j < n; j++ {
			ids = append(ids, "t"+strconv.Itoa((i+j)%8))
		}
		h.tasks(ids...)
		if i%3 == 2 { // every third change also adds an app: a reload
			svc := freePort(t)
			id := "/extra" + strconv.Itoa(i)
			h.w.app(id, []int{svc}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_BIND_ADDR": "127.0.0.1"})
		}
		plan, err := h.apply(nil)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Reload != (i%3 == 2) {
			t.Fatalf("change %d: reload %v", i, plan.Reload)
		}
		time.Sleep(150 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	t.Logf("%d requests, %d failed, %d reloads", ok.Load(), failed.Load(), p.Reloads())
	if failed.Load() != 0 {
		t.Errorf("%d failed requests (first: %v)", failed.Load(), firstErr.Load())
	}
	if p.Reloads() != 2 {
		t.Errorf("%d reloads, want 2", p.Reloads())
	}
	if ok.Load() < 100 {
		t.Errorf("only %d requests", ok.Load())
	}
}

// TestApplierFallsBackToReload: when the runtime API refuses a command
// (HAProxy's state drifted from prev), Apply reloads from the file.
func TestApplierFallsBackToReload(t *testing.T) {
	h := newLBHarness(t)
	h.tasks("t1")
	if _, err := h.apply(nil); err != nil {
		t.Fatal(err)
	}
	p := h.a.Process()
	worker := p.WorkerPID()
	h.tasks("t1", "t2")
	next := mustRender(t, h.prev, h.w.s, h.cfg)
	plan := Diff(h.prev, next)
	plan.Commands = append([]string{"set server nope/nope state ready"}, plan.Commands...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.a.Apply(ctx, h.prev, next, plan); err != nil {
		t.Fatal(err)
	}
	if p.WorkerPID() == worker || p.Reloads() != 1 {
		t.Errorf("no fallback reload: worker %d→%d, %d reloads", worker, p.WorkerPID(), p.Reloads())
	}
	h.waitServed(h.svc, "t1", "t2")
}

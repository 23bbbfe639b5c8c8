package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// reply is the echo server's answer to GET /.
type reply struct {
	TaskID  string `json:"taskId"`
	AppID   string `json:"appId"`
	Version string `json:"version"`
}

// newConnClient sends each request on a new connection.
var newConnClient = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func getEcho(ctx context.Context, url string) (reply, error) {
	var r reply
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return r, err
	}
	resp, err := newConnClient.Do(req)
	if err != nil {
		return r, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return r, err
	}
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("status %d: %.200q", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &r); err != nil || r.TaskID == "" {
		return r, fmt.Errorf("not an echo reply: %.200q", body)
	}
	return r, nil
}

// waitServed waits until want consecutive requests on new connections are
// answered by tasks of appID at version.
func waitServed(ctx context.Context, timeout time.Duration, url, appID, version string, want int) error {
	ok := 0
	return waitFor(ctx, timeout, fmt.Sprintf("%s served by %s version %s", url, appID, version), func() (bool, string, error) {
		for ok < want {
			r, err := getEcho(ctx, url)
			if err != nil {
				ok = 0
				return false, "", err
			}
			if r.AppID != appID || r.Version != version {
				ok = 0
				return false, fmt.Sprintf("answered by %s version %s", r.AppID, r.Version), nil
			}
			ok++
		}
		return true, "", nil
	})
}

// sample sends n requests on new connections and counts the answers by
// version ("error: ..." for a failure).
func sample(ctx context.Context, url string, n int) map[string]int {
	out := map[string]int{}
	for range n {
		r, err := getEcho(ctx, url)
		if err != nil {
			out["error: "+err.Error()]++
			continue
		}
		out[r.Version]++
	}
	return out
}

// watch is a light prober that runs during a deploy: a request on a new
// connection every 20 ms, to tell when the new version started to answer,
// when the old one stopped, and when failures happened.
type watch struct {
	mu        sync.Mutex
	start     time.Time
	oldV      string
	sent      int
	firstNew  time.Duration // -1: never
	lastOld   time.Duration
	failures  []string // the first 20
	nFailures int
	done      chan struct{}
}

func startWatch(ctx context.Context, url, oldVersion string, start time.Time) *watch {
	w := &watch{start: start, oldV: oldVersion, firstNew: -1, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			began := time.Since(w.start)
			r, err := getEcho(ctx, url)
			if ctx.Err() != nil {
				return
			}
			w.record(began, r, err)
		}
	}()
	return w
}

func (w *watch) record(at time.Duration, r reply, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sent++
	switch {
	case err != nil:
		w.nFailures++
		if len(w.failures) < 20 {
			w.failures = append(w.failures, fmt.Sprintf("+%s: %v", at.Round(time.Millisecond), err))
		}
	case r.Version == w.oldV:
		w.lastOld = at
	case w.firstNew < 0:
		w.firstNew = at
	}
}

// wait returns once the prober stopped (its ctx ended).
func (w *watch) wait() {
	<-w.done
}

package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/atollhq/atoll/events"
)

// Readiness checks, as Marathon's readinessChecks: from the task's start,
// a GET of the check's path on its port every interval until a ready
// status comes back; then the agent tells the master once (a TASK_RUNNING
// update with Ready) and stops. The master holds the deployment step
// until then. The agent runs it, not the master, for the reason it runs
// health checks: the agent reaches the task's port, the master may not.

// startReadinessLocked starts the task's readiness check, if it has one.
// a.mu held.
func (a *Agent) startReadinessLocked(t *task) {
	probe := t.launch.Readiness
	if probe == nil || t.killing || t.exited {
		return
	}
	ctx, cancel := context.WithCancel(a.wctx)
	prev := t.stopHealth
	t.stopHealth = func() { // stopping health stops readiness too
		cancel()
		if prev != nil {
			prev()
		}
	}
	a.goRun(func() {
		defer cancel()
		if a.waitReady(ctx, *probe) {
			a.reportReady(t)
		}
	})
}

// waitReady probes until the task is ready (true) or ctx ends (false).
func (a *Agent) waitReady(ctx context.Context, p events.ReadinessProbe) bool {
	scheme := "http"
	client := &http.Client{Timeout: p.Timeout}
	if p.Protocol == "HTTPS" {
		scheme = "https"
		// As Marathon's checks: the task's certificate is not verified.
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec
	}
	url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(a.cfg.AdvertiseIP, strconv.Itoa(p.Port)), p.Path)
	interval := max(p.Interval, 100*time.Millisecond)
	for {
		if code, err := getStatus(ctx, client, url); err == nil && slices.Contains(p.Codes, code) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(interval):
		}
	}
}

func getStatus(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// reportReady tells the master the task passed its readiness check.
func (a *Agent) reportReady(t *task) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.killing || t.exited || t.state != events.TaskRunning || a.tasks[t.id] != t {
		return
	}
	ready := true
	t.ready = true // later health updates say so too (a long queue compacts)
	a.status.push(statusItem{upd: events.StatusUpdate{TaskID: t.id, State: events.TaskRunning, Ready: &ready, Time: time.Now().UTC()}})
	a.log.Info("task ready", "task", t.id)
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/atollhq/atoll/lbsync"
)

// lbUnderTest is the sidecar the latency and scale figures measure: the
// real `atoll lb` process (the default) or the same parts inside the
// benchmark's process (-inline, which can split a latency into its steps).
type lbUnderTest interface {
	// reloads is the HAProxy master's own reload count ("show proc").
	reloads(ctx context.Context) (int, error)
	// ownReloads is how many reloads the sidecar has asked for.
	ownReloads(ctx context.Context) (int, error)
	// reloaded waits until the sidecar finished a reload that came after
	// t0 (when it had done `before` of them) and says when.
	reloaded(ctx context.Context, t0 time.Time, before int, timeout time.Duration) (time.Time, error)
	// split divides event → served latencies into the sidecar's steps, when
	// it can see them.
	split(published, served []time.Time) breakdown
	// describe lists what the sidecar did since from, for -v.
	describe(from time.Time) string
	diagnose(ctx context.Context, a *appModel, t0 time.Time, leaderSeq uint64) string
	stop()
}

// processSidecar is `atoll lb --nats …` as an operator runs it, in its own
// process with its own garbage collector, its HAProxy in dir.
type processSidecar struct {
	cmd     *exec.Cmd
	done    chan struct{}
	log     string
	master  *lbsync.Process // only its master socket is used
	rt      *lbsync.Runtime
	metrics string // the sidecar's /metrics URL
	client  *http.Client
}

func startProcessSidecar(ctx context.Context, atoll string, natsArgs []string, haproxy, dir string, minReload time.Duration) (*processSidecar, error) {
	var ports [4]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	hdir := filepath.Join(dir, "haproxy")
	if err := os.MkdirAll(hdir, 0o755); err != nil {
		return nil, fmt.Errorf("sidecar dir: %w", err)
	}
	s := &processSidecar{
		done:    make(chan struct{}),
		log:     filepath.Join(dir, "atoll-lb.log"),
		master:  &lbsync.Process{MasterSocket: filepath.Join(hdir, "master.sock")},
		rt:      &lbsync.Runtime{SocketPath: filepath.Join(hdir, "admin.sock")},
		metrics: "http://127.0.0.1:" + strconv.Itoa(ports[3]) + "/metrics",
		client:  &http.Client{Timeout: 2 * time.Second},
	}
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, fmt.Errorf("sidecar log: %w", err)
	}
	defer logf.Close()
	s.cmd = exec.Command(atoll, append(append([]string{"lb"}, natsArgs...),
		"--haproxy-config", filepath.Join(hdir, "haproxy.cfg"), "--haproxy-bin", haproxy,
		"--bind-addr", "127.0.0.1", "--http-port", strconv.Itoa(ports[0]), "--https-port", strconv.Itoa(ports[1]),
		"--stats", "127.0.0.1:"+strconv.Itoa(ports[2]), "--metrics-addr", "127.0.0.1:"+strconv.Itoa(ports[3]),
		"--min-reload-interval", minReload.String(), "--node", "bench")...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start atoll lb: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	context.AfterFunc(ctx, s.stop)
	return s, nil
}

func (s *processSidecar) reloads(ctx context.Context) (int, error) {
	info, err := s.master.ShowProc(ctx)
	if err != nil {
		return 0, fmt.Errorf("show proc: %w", err)
	}
	return info.MasterReloads, nil
}

// ownReloads reads atoll_lb_reloads_total from the sidecar's /metrics.
func (s *processSidecar) ownReloads(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.metrics, nil)
	if err != nil {
		return 0, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("sidecar metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "atoll_lb_reloads_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("atoll_lb_reloads_total %q: %w", v, err)
			}
			return int(f), nil
		}
	}
	return 0, fmt.Errorf("sidecar metrics: no atoll_lb_reloads_total (%v)", sc.Err())
}

// reloaded polls the reload counter every 5 ms; the counter goes up when
// the reload's Apply returns, which is where the sidecar's rate limit
// starts counting.
func (s *processSidecar) reloaded(ctx context.Context, _ time.Time, before int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := s.ownReloads(ctx)
		if err == nil && n > before {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no reload after %d within %v (last: %d, %v)", before, timeout, n, err)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// split is empty: the steps happen in another process.
func (s *processSidecar) split([]time.Time, []time.Time) breakdown { return breakdown{} }

func (s *processSidecar) describe(time.Time) string { return " (see " + s.log + ")" }

func (s *processSidecar) diagnose(ctx context.Context, a *appModel, _ time.Time, leaderSeq uint64) string {
	tail := ""
	if b, err := os.ReadFile(s.log); err == nil {
		if len(b) > 2048 {
			b = b[len(b)-2048:]
		}
		tail = string(b)
	}
	return fmt.Sprintf("%s; leader at seq %d; atoll lb log ends:\n%s", serversOf(ctx, s.rt, a), leaderSeq, tail)
}

// stop sends SIGTERM (atoll lb stops HAProxy and exits) and waits up to
// 10 s before killing it.
func (s *processSidecar) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

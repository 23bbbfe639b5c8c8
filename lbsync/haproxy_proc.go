package lbsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Process is an HAProxy master (`haproxy -W -S <master.sock> -f <cfg>
// -p <pidfile>`) owned by the sidecar.
type Process struct {
	Bin          string // "haproxy" if empty
	ConfigPath   string
	MasterSocket string
	PIDFile      string
	// StopTimeout is how long a soft stop (SIGUSR1) may take before
	// SIGTERM, and SIGTERM before SIGKILL (10s if 0).
	StopTimeout time.Duration
	// ReloadTimeout bounds the wait for a reload's new worker (30s if 0).
	ReloadTimeout time.Duration

	cmd     *exec.Cmd
	out     syncBuffer
	done    chan struct{}
	waitErr error
	reloads atomic.Int64
	worker  atomic.Int64
	mu      sync.Mutex // serialises reloads
}

// ProcInfo is the master CLI's "show proc".
type ProcInfo struct {
	MasterPID     int
	MasterReloads int // as counted by the master
	Workers       []int
	OldWorkers    []int
}

// Start runs HAProxy and returns once a worker serves. The process lives
// until ctx ends: then it is soft-stopped (SIGUSR1), and after StopTimeout
// terminated, then killed. Done is closed once it has exited.
func (p *Process) Start(ctx context.Context) error {
	if p.Bin == "" {
		p.Bin = "haproxy"
	}
	if p.StopTimeout <= 0 {
		p.StopTimeout = 10 * time.Second
	}
	if p.ReloadTimeout <= 0 {
		p.ReloadTimeout = 30 * time.Second
	}
	os.Remove(p.MasterSocket)
	args := []string{"-W", "-S", p.MasterSocket, "-f", p.ConfigPath}
	if p.PIDFile != "" {
		args = append(args, "-p", p.PIDFile)
	}
	p.cmd = exec.Command(p.Bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	// Pdeathsig: should this process die without stopping HAProxy (a
	// SIGKILL), the master gets SIGTERM instead of serving a stale config
	// forever. The signal follows the thread that started the child, so
	// that thread stays locked to the goroutine that waits for it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	p.done = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return err
	}
	go p.stopOn(ctx)
	deadline := time.Now().Add(p.ReloadTimeout)
	for {
		info, err := p.ShowProc(ctx)
		if err == nil && len(info.Workers) > 0 {
			p.worker.Store(int64(info.Workers[0]))
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("haproxy exited: %v: %s", p.waitErr, p.Output())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.signal(syscall.SIGKILL)
			return fmt.Errorf("haproxy did not start a worker in %v: %v: %s", p.ReloadTimeout, err, p.Output())
		}
	}
}

func (p *Process) stopOn(ctx context.Context) {
	select {
	case <-p.done:
		return
	case <-ctx.Done():
	}
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGKILL} {
		// The signal is sent again while waiting: a master that is
		// re-executing itself for a reload loses signals meanwhile.
		deadline := time.After(p.StopTimeout)
		resend := time.NewTicker(250 * time.Millisecond)
		for waiting := true; waiting; {
			p.signal(sig)
			select {
			case <-p.done:
				resend.Stop()
				return
			case <-deadline:
				waiting = false
			case <-resend.C:
			}
		}
		resend.Stop()
	}
}

func (p *Process) signal(sig syscall.Signal) {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Done is closed when the master has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Output is what HAProxy printed so far (its last 64 KiB).
func (p *Process) Output() string { return p.out.String() }

// Reloads counts the reloads this Process completed.
func (p *Process) Reloads() int { return int(p.reloads.Load()) }

// WorkerPID is the current worker's pid, as last seen.
func (p *Process) WorkerPID() int { return int(p.worker.Load()) }

// MasterPID is the master's pid.
func (p *Process) MasterPID() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Reload asks the master to reload (master CLI "reload") and waits until
// "show proc" lists a new current worker: 2.6 does not report the result,
// so a reload that does not produce one within ReloadTimeout is an error
// (the old worker keeps serving).
func (p *Process) Reload(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	before, err := p.ShowProc(ctx)
	if err != nil {
		return err
	}
	old := map[int]bool{}
	for _, w := range append(before.Workers, before.OldWorkers...) {
		old[w] = true
	}
	// The master re-executes itself and drops the connection.
	_, _ = unixRoundTrip(ctx, p.MasterSocket, 5*time.Second, "reload\n", true)
	deadline := time.Now().Add(p.ReloadTimeout)
	for {
		info, err := p.ShowProc(ctx)
		if err == nil && info.MasterReloads > before.MasterReloads {
			for _, w := range info.Workers {
				if !old[w] {
					p.worker.Store(int64(w))
					p.reloads.Add(1)
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("haproxy reload: no new worker after %v (last: %+v, %v): %s", p.ReloadTimeout, info, err, tail(p.Output(), 2048))
		}
		select {
		case <-p.done:
			return fmt.Errorf("haproxy exited during reload: %v: %s", p.waitErr, tail(p.Output(), 2048))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ShowProc asks the master CLI for its processes.
func (p *Process) ShowProc(ctx context.Context) (ProcInfo, error) {
	raw, err := unixRoundTrip(ctx, p.MasterSocket, 2*time.Second, "show proc\n", true)
	if err != nil {
		return ProcInfo{}, err
	}
	return parseShowProc(raw)
}

func parseShowProc(raw string) (ProcInfo, error) {
	var info ProcInfo
	section := ""
	for _, line := range strings.Split(raw, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if strings.HasPrefix(line, "#") {
			section = line
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil || len(f) < 2 {
			continue
		}
		switch {
		case f[1] == "master":
			info.MasterPID = pid
			if len(f) > 2 {
				info.MasterReloads, _ = strconv.Atoi(f[2])
			}
		case strings.Contains(section, "old workers"):
			info.OldWorkers = append(info.OldWorkers, pid)
		case strings.Contains(section, "workers") && f[1] == "worker":
			info.Workers = append(info.Workers, pid)
		}
	}
	if info.MasterPID == 0 {
		return info, errors.New("show proc: no master in " + strconv.Quote(raw))
	}
	return info, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// syncBuffer keeps the last 64 KiB written to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	if s.b.Len() > 64<<10 {
		s.b.Next(s.b.Len() - 32<<10)
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// start runs p in its namespace, detached (own session, so it outlives
// this program and a terminal's ^C), appending to its log.
func (l *Lab) start(p Proc) error {
	if pid, ok := l.alive(p); ok {
		return fmt.Errorf("%s already runs (pid %d)", p.Name, pid)
	}
	if err := l.ensureDir(p); err != nil {
		return err
	}
	argv, env, err := l.command(p)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(l.logFile(p), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("log of %s: %w", p.Name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== %s lab: starting %s in %s: %s\n", time.Now().UTC().Format(time.RFC3339), p.Name, p.Host.NS(), strings.Join(argv, " "))
	// ip netns exec execs the command, so the pid is the process's own.
	cmd := exec.Command("ip", append([]string{"netns", "exec", p.Host.NS()}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = l.workDir(p)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it dies while we still run; otherwise init adopts it.
	go cmd.Wait() //nolint:errcheck
	if err := os.WriteFile(l.pidFile(p), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("pid file of %s: %w", p.Name, err)
	}
	return nil
}

// alive returns p's pid if the recorded process still runs in p's
// namespace: a pid recycled by something else is never ours.
func (l *Lab) alive(p Proc) (int, bool) {
	b, err := os.ReadFile(l.pidFile(p))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, pidInNamespace(pid, p.Host.NS())
}

// pidInNamespace says whether pid is a live (not zombie) process in ns.
func pidInNamespace(pid int, ns string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	want, err1 := os.Stat("/run/netns/" + ns)
	got, err2 := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid))
	return err1 == nil && err2 == nil && os.SameFile(want, got)
}

// stop ends p: SIGTERM (SIGKILL with hard), then SIGKILL after grace.
func (l *Lab) stop(p Proc, hard bool, grace time.Duration) error {
	pid, ok := l.alive(p)
	if !ok {
		return nil
	}
	sig := syscall.SIGTERM
	if hard {
		sig = syscall.SIGKILL
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s (pid %d): %w", p.Name, pid, err)
	}
	deadline := time.Now().Add(grace)
	for pidInNamespace(pid, p.Host.NS()) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(grace)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// killNamespace SIGKILLs every process in ns (a host losing power: its
// agent, tasks, HAProxy, all at once) and waits until they are gone.
func killNamespace(ns string) error {
	for range 100 {
		out, err := exec.Command("ip", "netns", "pids", ns).Output()
		if err != nil {
			return fmt.Errorf("ip netns pids %s: %w", ns, err)
		}
		pids := strings.Fields(string(out))
		live := 0
		for _, s := range pids {
			pid, err := strconv.Atoi(s)
			if err != nil || !pidInNamespace(pid, ns) {
				continue
			}
			live++
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if live == 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("processes in %s survive SIGKILL", ns)
}

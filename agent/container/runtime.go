package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrNotFound is a container the runtime does not know (never created, or
// deleted).
var ErrNotFound = errors.New("container not found")

// Runtime drives an OCI runtime binary (runc) whose container state lives
// in Root, a folder of the agent's (root only: it names every container's
// process and bundle).
type Runtime struct {
	Binary string // absolute path of runc
	Root   string // runc --root
	// CallTimeout bounds each runtime command but the container's own
	// run; 0 means 30 s.
	CallTimeout time.Duration
}

// NewRuntime finds the runtime binary (a name is looked up on PATH, and
// in /usr/sbin where Debian puts runc) and makes its state folder.
func NewRuntime(binary, root string) (*Runtime, error) {
	if binary == "" {
		binary = "runc"
	}
	path, err := exec.LookPath(binary)
	if err != nil && !strings.Contains(binary, "/") {
		path, err = exec.LookPath(filepath.Join("/usr/sbin", binary))
	}
	if err != nil {
		return nil, fmt.Errorf("container runtime %q not found (apt-get install runc): %w", binary, err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("container runtime state: %w", err)
	}
	return &Runtime{Binary: path, Root: root}, nil
}

// Process is a container's runtime process: `runc run` in the foreground
// (under a shell that records its status, see ExitCode), a child of the
// caller. It lives as long as the container's first process and exits
// with its status (128+signal when a signal ended it: 137 for the
// kernel's OOM kill). The caller reaps it, with Wait or with its own
// wait4 on Pid.
type Process struct {
	ID  string
	Pid int // the runc process, the caller's child
	// InitPid is the container's first process on the host.
	InitPid int
	cmd     *exec.Cmd
}

// Wait waits for the container to end and returns runc's exit status:
// the container process's exit code, or 128+signal.
func (p *Process) Wait() (int, error) {
	err := p.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// Start writes spec into bundle (a folder of the agent's) as config.json
// and runs the container with stdout and stderr appended to the given
// files (the task's sandbox files). It returns once the container's
// process runs, or with runc's error when it could not start; the
// container stays known to the runtime after it ends (--keep) so that the
// caller can read its cgroup (OOMKilled) before Delete.
func (r *Runtime) Start(ctx context.Context, bundle string, spec *specs.Spec, stdout, stderr string) (*Process, error) {
	id := filepath.Base(bundle)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return nil, fmt.Errorf("container %s: bundle: %w", id, err)
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return nil, fmt.Errorf("container %s: bundle: %w", id, err)
	}
	outf, err := os.OpenFile(stdout, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	defer outf.Close()
	errf, err := os.OpenFile(stderr, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	defer errf.Close()
	// runc's own complaints (a bad spec, a missing binary in the image)
	// go to a log in the bundle, and into the error below.
	logPath := filepath.Join(bundle, "runc.log")
	os.Remove(logPath)
	pidFile := filepath.Join(bundle, "pid")
	os.Remove(pidFile)
	exitFile := filepath.Join(bundle, exitFileName)
	os.Remove(exitFile)
	// A shell around runc writes its status to the bundle: an agent that
	// restarted (and so is no longer the parent) reads it there.
	cmd := exec.Command("/bin/sh", "-c", `"$0" "$@"; rc=$?; echo $rc > "$ATOLL_EXIT_FILE"; exit $rc`,
		r.Binary, "--root", r.Root, "--log", logPath, "--log-format", "json",
		"run", "--keep", "--bundle", bundle, "--pid-file", pidFile, id)
	cmd.Env = append(os.Environ(), "ATOLL_EXIT_FILE="+exitFile)
	cmd.Stdin = nil // /dev/null
	cmd.Stdout, cmd.Stderr = outf, errf
	// Its own process group: signals for the agent's group (a ^C) do
	// not reach containers; it outlives an agent restart.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("container %s: start %s: %w", id, r.Binary, err)
	}
	p := &Process{ID: id, Pid: cmd.Process.Pid, cmd: cmd}
	// Wait for the pid file (written once the process runs) or for runc
	// to exit (it could not start the container), with the caller's
	// deadline and our own.
	deadline := time.Now().Add(r.callTimeout())
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	started := func() bool {
		if b, err := os.ReadFile(pidFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			if n, err := strconv.Atoi(string(bytes.TrimSpace(b))); err == nil {
				p.InitPid = n
				return true
			}
		}
		return false
	}
	for {
		if started() {
			return p, nil
		}
		if exited(p.Pid) {
			// A short task may have run and ended between the two
			// looks: runc wrote the pid file before it ran it.
			if started() {
				return p, nil
			}
			status, _ := p.Wait()
			r.Delete(context.Background(), id)
			return nil, fmt.Errorf("container %s: runc could not start it (exit %d): %s", id, status, runcLog(logPath))
		}
		select {
		case <-ctx.Done():
			r.Kill(context.Background(), id, 0)
			p.Wait()
			r.Delete(context.Background(), id)
			return nil, fmt.Errorf("container %s: start: %w", id, ctx.Err())
		case <-tick.C:
			if time.Now().After(deadline) {
				r.Kill(context.Background(), id, 0)
				p.Wait()
				r.Delete(context.Background(), id)
				return nil, fmt.Errorf("container %s: not running after %v: %s", id, r.callTimeout(), runcLog(logPath))
			}
		}
	}
}

// exited reports whether child pid has exited, without reaping it.
func exited(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	if err != nil {
		return errors.Is(err, unix.ECHILD)
	}
	// WNOHANG with no exited child leaves the siginfo zeroed.
	return info.Signo != 0
}

// runcLog is the last error runc logged, or its whole log.
func runcLog(path string) string {
	b, _ := os.ReadFile(path)
	var last string
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var e struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &e) == nil && (e.Level == "error" || e.Level == "fatal") {
			last = e.Msg
		}
	}
	if last == "" {
		last = strings.TrimSpace(string(b))
	}
	return last
}

// State is what the runtime says of a container.
type State struct {
	ID     string `json:"id"`
	Status string `json:"status"` // creating, created, running, paused, stopped
	Pid    int    `json:"pid"`
	Bundle string `json:"bundle"`
}

// State asks the runtime about container id: an agent that restarted
// adopts its containers by id with it.
func (r *Runtime) State(ctx context.Context, id string) (State, error) {
	out, err := r.call(ctx, "state", id)
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(out, &st); err != nil {
		return State{}, fmt.Errorf("container %s: runc state: %w", id, err)
	}
	return st, nil
}

// List returns the containers the runtime knows (for adoption).
func (r *Runtime) List(ctx context.Context) ([]State, error) {
	out, err := r.call(ctx, "list", "--format", "json")
	if err != nil {
		return nil, err
	}
	var sts []State
	if len(bytes.TrimSpace(out)) == 0 || string(bytes.TrimSpace(out)) == "null" {
		return nil, nil
	}
	if err := json.Unmarshal(out, &sts); err != nil {
		return nil, fmt.Errorf("runc list: %w", err)
	}
	return sts, nil
}

// Kill stops container id: SIGTERM, then after grace SIGKILL to every
// process in it. A grace of 0 kills at once. It returns when the
// container is stopped, not yet deleted.
func (r *Runtime) Kill(ctx context.Context, id string, grace time.Duration) error {
	if grace > 0 {
		if _, err := r.call(ctx, "kill", id, "TERM"); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			// Already stopped: runc says "container not running".
			if st, serr := r.State(ctx, id); serr == nil && st.Status == "stopped" {
				return nil
			}
			return err
		}
		if r.waitStopped(ctx, id, grace) {
			return nil
		}
	}
	if _, err := r.call(ctx, "kill", "--all", id, "KILL"); err != nil {
		if st, serr := r.State(ctx, id); errors.Is(serr, ErrNotFound) || (serr == nil && st.Status == "stopped") {
			return nil
		}
		return err
	}
	if !r.waitStopped(ctx, id, r.callTimeout()) {
		return fmt.Errorf("container %s: still running after SIGKILL", id)
	}
	return nil
}

// waitStopped polls the container's state until it is stopped or gone,
// for at most d.
func (r *Runtime) waitStopped(ctx context.Context, id string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := r.State(ctx, id)
		if errors.Is(err, ErrNotFound) || (err == nil && st.Status == "stopped") {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// Delete removes container id from the runtime (and its cgroup), killing
// it first if it still runs. Deleting an unknown container is fine.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	if _, err := r.call(ctx, "delete", "--force", id); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

func (r *Runtime) callTimeout() time.Duration {
	if r.CallTimeout > 0 {
		return r.CallTimeout
	}
	return 30 * time.Second
}

// call runs one runtime command with a deadline.
func (r *Runtime) call(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.callTimeout())
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, r.Binary, append([]string{"--root", r.Root}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "does not exist") || strings.Contains(msg, "not exist") {
			return nil, fmt.Errorf("%s %s: %w", filepath.Base(r.Binary), strings.Join(args, " "), ErrNotFound)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", filepath.Base(r.Binary), strings.Join(args, " "), ctx.Err())
		}
		return nil, fmt.Errorf("%s %s: %v: %s", filepath.Base(r.Binary), strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// readSpec reads a bundle's config.json back.
func readSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// exitFileName is the file in a bundle that holds runc run's exit status.
const exitFileName = "exit-status"

// ExitCode reads the status a container's runc run exited with from its
// bundle: how an agent that restarted learns how an adopted container
// ended. ok is false while it runs (or when the runc process was killed
// before it could write it).
func ExitCode(bundle string) (code int, ok bool) {
	b, err := os.ReadFile(filepath.Join(bundle, exitFileName))
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return n, err == nil
}

// Signal sends sig to container id's first process; SIGKILL goes to every
// process in it (runc kill --all), as a kill's last step must leave none.
func (r *Runtime) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	args := []string{"kill"}
	if sig == syscall.SIGKILL {
		args = append(args, "--all")
	}
	_, err := r.call(ctx, append(args, id, strconv.Itoa(int(sig)))...)
	return err
}

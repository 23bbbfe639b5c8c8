package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// probeCommand runs `/bin/sh -c value` in the task's sandbox with the
// task's environment, as the task's user: exit status 0 is healthy. The command gets its own
// process group, and the whole group is killed when the check ends (on
// time, on timeout, or because the task's checks stop), so a check never
// leaves processes behind. Output goes to /dev/null.
func probeCommand(ctx context.Context, value string, tg Target, timeout time.Duration) error {
	if tg.Exec != nil {
		return probeInContainer(ctx, value, tg, timeout)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("command check: %w", err)
	}
	defer null.Close()
	p, err := os.StartProcess("/bin/sh", []string{"/bin/sh", "-c", value}, &os.ProcAttr{
		Dir:   tg.Dir,
		Env:   tg.Env,
		Files: []*os.File{null, null, null},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Credential: tg.Credential},
	})
	if err != nil {
		return fmt.Errorf("command check: start: %w", err)
	}
	pid := p.Pid

	// Wait for the exit without reaping: while the shell is an unreaped
	// zombie its pid, and so the group id, cannot be recycled, and
	// killing the group stays safe. The goroutine ends once the shell
	// exits, which the SIGKILLs below guarantee.
	exited := make(chan error, 1)
	go func() { exited <- waitExited(pid) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var cause error
	select {
	case err = <-exited:
	case <-timer.C:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		err = <-exited
		cause = fmt.Errorf("command check: timeout: still running after %v, killed", timeout)
	case <-ctx.Done():
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		err = <-exited
		cause = fmt.Errorf("command check: stopped: %w", context.Cause(ctx))
	}
	// Whatever the shell left in the background goes with it.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	st, werr := p.Wait()
	switch {
	case cause != nil:
		return cause
	case err != nil:
		return fmt.Errorf("command check: wait: %w", err)
	case werr != nil:
		return fmt.Errorf("command check: wait: %w", werr)
	case st.Success():
		return nil
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Errorf("command check: terminated by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Errorf("command check: exited with status %d", st.ExitCode())
}

// waitExited blocks until child pid has exited, leaving it unreaped.
func waitExited(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// probeInContainer runs `/bin/sh -c value` in the task's container.
func probeInContainer(ctx context.Context, value string, tg Target, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	code, err := tg.Exec(cctx, []string{"/bin/sh", "-c", value})
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("command check: stopped: %w", context.Cause(ctx))
	case cctx.Err() != nil:
		return fmt.Errorf("command check: timeout: still running after %v, killed", timeout)
	case err != nil:
		return fmt.Errorf("command check: %w", err)
	case code != 0:
		return fmt.Errorf("command check: exited with status %d", code)
	}
	return nil
}

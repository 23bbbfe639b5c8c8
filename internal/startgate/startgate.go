// Package startgate starts a process that waits, before it execs its
// program, until the starter lets it go. The agent moves the process into
// its task's cgroup in between, so that no instruction of the task runs
// outside the task's limits.
//
// Why a gate: cgroup v2 can place a child in a cgroup at clone
// (CLONE_INTO_CGROUP, Go's SysProcAttr.UseCgroupFD), but cgroup v1 has no
// such thing, and moving a process after it started leaves a window where
// the task runs unlimited. The gate (this same binary, re-executed through
// /proc/self/exe, as runc re-executes itself as its init) works on both, so
// there is one start path everywhere. A shell gate (sh -c 'read; exec')
// would not do: dash drops environment variables whose names are not shell
// names and adds PWD, and the task must get its env exactly.
package startgate

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// arg0 marks a process as a gate: argv is [arg0, program, argv...].
const arg0 = "atoll-start-gate"

// The gate's end of the two pipes.
const (
	goFD  = 3 // the starter writes 'g' to let the gate exec, or closes it to stop it
	errFD = 4 // the gate writes the exec's errno; closed on a successful exec
)

// Main makes this process a gate when it was started as one, and then
// never returns. Call it first thing in main (and in TestMain of packages
// whose tests start gates).
func Main() {
	if len(os.Args) < 3 || os.Args[0] != arg0 {
		return
	}
	os.Exit(run(os.Args[1], os.Args[2:]))
}

func run(prog string, argv []string) int {
	syscall.CloseOnExec(goFD)
	syscall.CloseOnExec(errFD)
	var b [1]byte
	for {
		n, err := syscall.Read(goFD, b[:])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if n != 1 || b[0] != 'g' {
			return 126 // the starter gave up on us
		}
		break
	}
	err := syscall.Exec(prog, argv, os.Environ())
	errno, ok := err.(syscall.Errno)
	if !ok {
		errno = syscall.EINVAL
	}
	_, _ = syscall.Write(errFD, []byte(strconv.Itoa(int(errno))))
	return 127
}

// Process is a gate, started and waiting for Release.
type Process struct {
	Pid  int
	prog string
	goW  *os.File
	errR *os.File
}

// execTimeout bounds how long Release waits for the gate's exec.
const execTimeout = 30 * time.Second

// Start starts a gate that will exec prog with argv (argv[0] as given) and
// attr's environment, files, folder and SysProcAttr. The process exists
// (attr.Sys applied: session, credentials) but runs none of prog until
// Release.
func Start(prog string, argv []string, attr *os.ProcAttr) (*Process, error) {
	goR, goW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start gate: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		goR.Close()
		goW.Close()
		return nil, fmt.Errorf("start gate: %w", err)
	}
	a := *attr
	files := append([]*os.File(nil), attr.Files...)
	for len(files) < goFD {
		files = append(files, nil)
	}
	a.Files = append(files[:goFD], goR, errW)
	// /proc/self/exe: the running binary even if its file was replaced,
	// and no folder on the way to it need be open to the task's user.
	p, err := os.StartProcess("/proc/self/exe", append([]string{arg0, prog}, argv...), &a)
	goR.Close()
	errW.Close()
	if err != nil {
		goW.Close()
		errR.Close()
		return nil, fmt.Errorf("start gate: %w", err)
	}
	pid := p.Pid
	_ = p.Release() // the caller waits for pid
	return &Process{Pid: pid, prog: prog, goW: goW, errR: errR}, nil
}

// Release lets the gate exec its program and returns once it did, or with
// the exec's error (the gate then exits with status 127).
func (p *Process) Release() error {
	defer p.errR.Close()
	_, err := p.goW.Write([]byte{'g'})
	p.goW.Close()
	if err != nil {
		return fmt.Errorf("release gate: %w", err)
	}
	_ = p.errR.SetReadDeadline(time.Now().Add(execTimeout))
	var buf [16]byte
	n, err := p.errR.Read(buf[:])
	switch {
	case n > 0:
		code, perr := strconv.Atoi(string(buf[:n]))
		if perr != nil {
			return fmt.Errorf("exec %s: bad report from the start gate %q", p.prog, buf[:n])
		}
		return &os.PathError{Op: "exec", Path: p.prog, Err: syscall.Errno(code)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("exec %s: the start gate did not exec within %v", p.prog, execTimeout)
	}
	return nil // EOF: the exec closed the pipe
}

// Abort stops the gate without running the program: it exits with status
// 126.
func (p *Process) Abort() {
	p.goW.Close()
	p.errR.Close()
}

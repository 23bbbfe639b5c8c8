package startgate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) {
	Main()
	os.Exit(m.Run())
}

// start runs a gate for argv, its stdout in a file; wait reaps it.
func start(t *testing.T, prog string, argv []string, env []string) (*Process, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := Start(prog, argv, &os.ProcAttr{Env: env, Files: []*os.File{nil, f, f}})
	if err != nil {
		t.Fatal(err)
	}
	return p, out
}

func wait(t *testing.T, pid int) syscall.WaitStatus {
	t.Helper()
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	return ws
}

// Nothing of the program runs before Release; after it, the program runs
// with its argv and environment exactly as given.
func TestReleaseExecsTheProgramAsGiven(t *testing.T) {
	p, out := start(t, "/usr/bin/env", []string{"my-env"}, []string{"a.b=1", "X-Y=2"})
	if data, _ := os.ReadFile(out); len(data) != 0 {
		t.Fatalf("the program ran before Release: %q", data)
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if ws := wait(t, p.Pid); ws.ExitStatus() != 0 {
		t.Fatalf("exit %d", ws.ExitStatus())
	}
	data, _ := os.ReadFile(out)
	if got := strings.Fields(string(data)); len(got) != 2 || got[0] != "a.b=1" || got[1] != "X-Y=2" {
		t.Errorf("env = %q, want exactly the two given", data)
	}
}

func TestReleaseReportsTheExecError(t *testing.T) {
	p, _ := start(t, "/nonexistent/program", []string{"x"}, nil)
	err := p.Release()
	if !errors.Is(err, syscall.ENOENT) || !strings.Contains(err.Error(), "/nonexistent/program") {
		t.Errorf("Release = %v, want ENOENT naming the program", err)
	}
	if ws := wait(t, p.Pid); ws.ExitStatus() != 127 {
		t.Errorf("exit %d, want 127", ws.ExitStatus())
	}
}

func TestAbortRunsNothing(t *testing.T) {
	p, out := start(t, "/bin/echo", []string{"echo", "ran"}, nil)
	p.Abort()
	if ws := wait(t, p.Pid); ws.ExitStatus() != 126 {
		t.Errorf("exit %d, want 126", ws.ExitStatus())
	}
	if data, _ := os.ReadFile(out); len(data) != 0 {
		t.Errorf("an aborted gate ran its program: %q", data)
	}
}

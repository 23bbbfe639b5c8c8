package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// busybox is the static shell the tests' tasks run (a make test
// dependency on the host; copied into the VM's initramfs for cgroup v2).
const busybox = "/bin/busybox"

// lacking fails the test under CI=true (where every dependency is
// installed and tests run as root), and skips it elsewhere.
func lacking(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// requireCgroups: the tests that make cgroups need root and busybox.
func requireCgroups(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		lacking(t, "making cgroups needs root")
	}
	if _, err := os.Stat(busybox); err != nil {
		lacking(t, "no static busybox (apt-get install busybox-static)")
	}
}

// openTestParent opens a parent cgroup of the test's own, removed (if
// empty) at the end.
func openTestParent(t *testing.T, l Limits) *Parent {
	t.Helper()
	requireCgroups(t)
	name := fmt.Sprintf("atoll-cgroup-test-%d-%s", os.Getpid(), strings.ToLower(t.Name()))
	p, err := OpenParent(name, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.RemoveIfEmpty(); err != nil && !errors.Is(err, fs.ErrNotExist) { // removed by the test
			t.Error(err)
		}
	})
	return p
}

// task is a busybox shell script running in a task's cgroup.
type task struct {
	cmd            *exec.Cmd
	stdout, stderr *os.File   // files, not pipes: Wait need not wait for what the task left running
	done           chan error // Wait's result
}

// startIn runs script in g from its first instruction, as the agent's
// tasks do: the shell waits for a line on stdin until it has been moved
// into g. Its cgroup is destroyed at the end.
func startIn(t *testing.T, g *Group, script string) *task {
	t.Helper()
	tk := &task{done: make(chan error, 1)}
	tk.cmd = exec.Command(busybox, "sh", "-c", "read go; "+script)
	dir := t.TempDir()
	for _, f := range []**os.File{&tk.stdout, &tk.stderr} {
		var err error
		if *f, err = os.CreateTemp(dir, "out"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = (*f).Close() })
	}
	tk.cmd.Stdout, tk.cmd.Stderr = tk.stdout, tk.stderr
	in, err := tk.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { tk.done <- tk.cmd.Wait() }()
	t.Cleanup(func() {
		// Not t.Context(): it is done before cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Destroy(ctx); err != nil {
			t.Error(err)
		}
	})
	if err := g.Add(tk.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(in, "go\n"); err != nil {
		t.Fatal(err)
	}
	_ = in.Close()
	return tk
}

// wait is the task's exit, within d.
func (tk *task) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-tk.done:
		return err
	case <-time.After(d):
		t.Fatalf("the task still runs after %s", d)
		return nil
	}
}

// output is what the task wrote to f (its stdout or stderr).
func output(t *testing.T, f *os.File) string {
	t.Helper()
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// control reads one of g's control files: v1's name in controller's
// hierarchy, or v2's.
func control(t *testing.T, g *Group, controller, v1, v2 string) string {
	t.Helper()
	name := v1
	if g.Paths().V2 != "" {
		name = v2
	}
	data, err := os.ReadFile(g.file(controller, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// statKey is key's value in a "key value" file's text.
func statKey(text, key string) string {
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			return v
		}
	}
	return ""
}

func exists(g *Group) bool {
	_, err := os.Stat(g.dir())
	return err == nil
}

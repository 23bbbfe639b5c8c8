package container

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func (e *env) driver() *Driver {
	return &Driver{Images: e.store, Runtime: e.rt, Dir: filepath.Join(e.t.TempDir(), "tasks")}
}

func TestDriverReportsTheOOMKillAndLeavesNothingBehind(t *testing.T) {
	e := newEnv(t)
	ref := e.push("hog:1", v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"/bin/sh"}})
	d := e.driver()
	sandbox := t.TempDir()
	r, err := d.Start(ctxFor(t, time.Minute), Launch{
		Task:   Task{ID: "hog.1", Cmd: "dd if=/dev/zero of=/dev/null bs=64M count=1", MemMB: 16, Sandbox: sandbox, CgroupsPath: cgroupParent + "/hog.1"},
		Image:  ref,
		Stdout: filepath.Join(sandbox, "stdout"), Stderr: filepath.Join(sandbox, "stderr"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := r.Wait(); status != 137 {
		t.Errorf("exit %d, want 137", status)
	}
	end, err := d.Cleanup(ctxFor(t, time.Minute), "hog.1")
	if err != nil || !end.OOMKilled {
		t.Errorf("Cleanup = %+v, %v; want OOMKilled", end, err)
	}
	// The task's folder stays until its delay has passed.
	if purged, err := d.PurgeFinished(time.Hour); err != nil || len(purged) != 0 {
		t.Errorf("PurgeFinished within the delay = %v, %v; want nothing", purged, err)
	}
	if code, ok := d.ExitCode("hog.1"); !ok || code != 137 {
		t.Errorf("exit status kept after cleanup: %d, %v", code, ok)
	}
	if purged, err := d.PurgeFinished(0); err != nil || len(purged) != 1 || purged[0] != "hog.1" {
		t.Errorf("PurgeFinished after the delay = %v, %v; want [hog.1]", purged, err)
	}
	if _, err := os.Stat(filepath.Join(d.Dir, "hog.1")); !os.IsNotExist(err) {
		t.Errorf("task folder after purge: %v", err)
	}
	if _, err := e.rt.State(context.Background(), "hog.1"); err == nil {
		t.Error("runc still knows the container after cleanup")
	}
	if leases, _ := e.store.Leases(); len(leases) != 0 {
		t.Errorf("leases after cleanup: %v", leases)
	}
}

func TestDriverStartFailuresAreClearQuickAndClean(t *testing.T) {
	e := newEnv(t)
	d := e.driver()
	ref := e.push("nouser:1", v1.Config{Cmd: []string{"/bin/sh"}, User: "ghost"})
	sandbox := t.TempDir()
	for _, c := range []struct{ id, image, want string }{
		{"bad.1", "BAD//ref", "invalid image reference"},
		{"gone.1", "127.0.0.1:1/echo:1", "registry 127.0.0.1:1 unreachable"},
		{"ghost.1", ref, `user "ghost" not found in the image`},
		{"a/b", ref, "not a container id"},
	} {
		start := time.Now()
		_, err := d.Start(ctxFor(t, time.Minute), Launch{Task: Task{ID: c.id, Sandbox: sandbox}, Image: c.image,
			Stdout: filepath.Join(sandbox, "stdout"), Stderr: filepath.Join(sandbox, "stderr")})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.image, err, c.want)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("%s: failing took %v", c.image, took)
		}
		if _, err := os.Stat(filepath.Join(d.Dir, c.id)); !os.IsNotExist(err) {
			t.Errorf("%s: task folder left: %v", c.id, err)
		}
	}
	if leases, _ := e.store.Leases(); len(leases) != 0 {
		t.Errorf("leases after failed starts: %v", leases)
	}
}

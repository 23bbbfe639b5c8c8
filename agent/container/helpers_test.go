package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/atollhq/atoll/agent/imagestore"
	"github.com/atollhq/atoll/internal/imagetest"
	"github.com/atollhq/atoll/internal/registrytest"
)

// cgroupParent is where this test binary's containers get their cgroups,
// under its own cgroup (runc's relative cgroupsPath), removed at the end.
var cgroupParent = fmt.Sprintf("atoll-test-%d", os.Getpid())

func TestMain(m *testing.M) {
	code := m.Run()
	removeCgroupParents()
	os.Exit(code)
}

// removeCgroupParents removes the parent folder runc made in every
// hierarchy (its containers' own cgroups went with runc delete).
func removeCgroupParents() {
	mounts, _ := filepath.Glob(filepath.Join(cgroupRoot, "*"))
	for _, m := range append(mounts, cgroupRoot) {
		filepath.Walk(m, func(p string, fi os.FileInfo, err error) error {
			if err != nil || !fi.IsDir() {
				return nil
			}
			if fi.Name() == cgroupParent {
				os.Remove(p)
				return filepath.SkipDir
			}
			return nil
		})
	}
}

func staticAtoll(t *testing.T) string {
	t.Helper()
	bin, err := imagetest.AtollBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// requireRuntime: containers need root and runc; under CI=true their
// absence fails the run.
func requireRuntime(t testing.TB) *Runtime {
	t.Helper()
	var why string
	if os.Geteuid() != 0 {
		why = "containers need root"
	}
	rt, err := NewRuntime("runc", filepath.Join(t.TempDir(), "runc"))
	if err != nil {
		why = err.Error()
	}
	if why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	return rt
}

// env is a registry, an image store and a runtime for one test.
type env struct {
	t     testing.TB
	reg   *registrytest.Registry
	store *imagestore.Store
	rt    *Runtime
}

func newEnv(t testing.TB) *env {
	rt := requireRuntime(t)
	reg := registrytest.Start(t, registrytest.Options{})
	store, err := imagestore.Open(imagestore.Options{Root: filepath.Join(t.TempDir(), "images")})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, reg: reg, store: store, rt: rt}
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// push builds an image of Base + busybox + extra files under cfg.
func (e *env) push(tag string, cfg v1.Config, extra ...imagetest.File) string {
	e.t.Helper()
	bb, err := imagetest.Busybox()
	if err != nil {
		e.t.Fatal(err)
	}
	base, err := imagetest.Layer(append(imagetest.Base(), bb...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	layers := []v1.Layer{base}
	if len(extra) > 0 {
		l, err := imagetest.Layer(extra...)
		if err != nil {
			e.t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := imagetest.Image(cfg, layers...)
	if err != nil {
		e.t.Fatal(err)
	}
	ref := e.reg.Host + "/" + tag
	if err := imagetest.Push(ctxFor(e.t, 30*time.Second), ref, img, "", ""); err != nil {
		e.t.Fatal(err)
	}
	return ref
}

// run is a started container and its files.
type run struct {
	*Process
	task   Task
	dir    string
	stdout string
	stderr string
}

// start pulls ref and runs task from it (ID, Rootfs, Sandbox and
// CgroupsPath filled in), cleaning everything up at the test's end.
func (e *env) start(ref string, task Task) (*run, error) {
	e.t.Helper()
	img, err := e.store.Pull(ctxFor(e.t, time.Minute), ref, imagestore.PullOptions{})
	if err != nil {
		return nil, err
	}
	dir := e.t.TempDir()
	os.Chmod(dir, 0o755)
	if task.ID == "" {
		task.ID = fmt.Sprintf("t%d", time.Now().UnixNano())
	}
	task.Sandbox = filepath.Join(dir, "sandbox")
	os.MkdirAll(task.Sandbox, 0o777)
	task.CgroupsPath = cgroupParent + "/" + task.ID
	task.Rootfs, err = e.store.Rootfs(task.ID, img, filepath.Join(dir, "fs"))
	if err != nil {
		return nil, err
	}
	e.t.Cleanup(func() { e.store.ReleaseRootfs(task.ID, filepath.Join(dir, "fs")) })
	user, err := ResolveUser(task.Rootfs, firstNonEmpty(task.User, img.Config.User))
	if err != nil {
		return nil, err
	}
	spec, err := Spec(task, img.Config, user)
	if err != nil {
		return nil, err
	}
	r := &run{task: task, dir: dir, stdout: filepath.Join(task.Sandbox, "stdout"), stderr: filepath.Join(task.Sandbox, "stderr")}
	r.Process, err = e.rt.Start(ctxFor(e.t, time.Minute), filepath.Join(dir, "bundle", task.ID), spec, r.stdout, r.stderr)
	if err != nil {
		return nil, err
	}
	e.t.Cleanup(func() {
		e.rt.Kill(context.Background(), task.ID, 0)
		e.rt.Delete(context.Background(), task.ID)
	})
	return r, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// waitExit waits for the container to end, at most d.
func (r *run) waitExit(t *testing.T, d time.Duration) int {
	t.Helper()
	done := make(chan int, 1)
	go func() { s, _ := r.Wait(); done <- s }()
	select {
	case s := <-done:
		return s
	case <-time.After(d):
		t.Fatalf("container %s still running after %v", r.ID, d)
		return -1
	}
}

func (r *run) output() string {
	b, _ := os.ReadFile(r.stdout)
	e, _ := os.ReadFile(r.stderr)
	return string(b) + string(e)
}

package container

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/atollhq/atoll/agent/echo"
	"github.com/atollhq/atoll/internal/freeport"
	"github.com/atollhq/atoll/internal/imagetest"
)

func TestImageEntrypointEnvWorkdirAndUserHonouredAndOverridden(t *testing.T) {
	e := newEnv(t)
	ref := e.push("cfg:1", v1.Config{
		Entrypoint: []string{"/bin/sh", "-c", `echo "$0 $* greeting=$GREETING cwd=$(pwd) uid=$(id -u)"`},
		Cmd:        []string{"from-cmd"},
		Env:        []string{"PATH=/bin", "GREETING=image"},
		WorkingDir: "/app",
		User:       "nobody",
	}, imagetest.Dir("app", 0o755))
	for _, c := range []struct {
		name string
		task Task
		want string
	}{
		{"image defaults", Task{}, "from-cmd  greeting=image cwd=/app uid=65534"},
		{"args replace CMD", Task{Args: []string{"a1", "a2"}}, "a1 a2 greeting=image cwd=/app uid=65534"},
		{"cmd replaces ENTRYPOINT, env overrides", Task{Cmd: `echo "cmd greeting=$GREETING cwd=$(pwd) uid=$(id -u) sandbox=$MESOS_SANDBOX"`, Env: map[string]string{"GREETING": "task"}},
			"cmd greeting=task cwd=/app uid=65534 sandbox=/mnt/mesos/sandbox"},
		{"app user over image USER", Task{User: "root"}, "from-cmd  greeting=image cwd=/app uid=0"},
	} {
		r, err := e.start(ref, c.task)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if status := r.waitExit(t, 30*time.Second); status != 0 {
			t.Errorf("%s: exit %d: %s", c.name, status, r.output())
		}
		if got := strings.TrimSpace(r.output()); got != c.want {
			t.Errorf("%s: printed %q, want %q", c.name, got, c.want)
		}
	}
}

func TestAtollEchoInAContainerAnswersOnTheHostNetwork(t *testing.T) {
	e := newEnv(t)
	ref := e.push("echo:1", v1.Config{
		Entrypoint: []string{"/bin/atoll", "echo"},
		Env:        []string{"PATH=/bin", "HOST=127.0.0.1"},
	}, imagetest.File{Path: "bin/atoll", Mode: 0o755, Src: staticAtoll(t)})
	port, err := freeport.Reserve("127.0.0.1", false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.start(ref, Task{ID: "web.1", MemMB: 64, CPUs: 0.5, PidsMax: 64,
		Env: map[string]string{"PORT0": strconv.Itoa(port), "MESOS_TASK_ID": "web.1", "MARATHON_APP_ID": "/web"}})
	if err != nil {
		t.Fatal(err)
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	var reply echo.Reply
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&reply)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v; container output: %s", url, err, r.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if reply.TaskID != "web.1" || reply.AppID != "/web" {
		t.Errorf("echo answered %+v, want task web.1 of /web", reply)
	}

	// A COMMAND health check runs inside the container.
	code, out, err := e.rt.Exec(ctxFor(t, 30*time.Second), "web.1", []string{"/bin/atoll", "version"})
	if err != nil || code != 0 {
		t.Errorf("exec atoll version in the container: %d, %v: %s", code, err, out)
	}
	code, _, err = e.rt.Exec(ctxFor(t, 30*time.Second), "web.1", []string{"/bin/sh", "-c", "exit 3"})
	if err != nil || code != 3 {
		t.Errorf("exec exit 3: %d, %v", code, err)
	}
	st, err := e.rt.Stats(ctxFor(t, 10*time.Second), "web.1")
	if err != nil || st.MemoryLimit != 64<<20 || st.MemoryBytes == 0 || st.CPUNanos == 0 || st.Pids == 0 {
		t.Errorf("stats %+v, %v; want usage under a 64 MB limit", st, err)
	}

	// An agent that restarted finds the container by id and stops it.
	again, err := NewRuntime(e.rt.Binary, e.rt.Root)
	if err != nil {
		t.Fatal(err)
	}
	list, err := again.List(ctxFor(t, 10*time.Second))
	if err != nil || len(list) != 1 || list[0].ID != "web.1" || list[0].Status != "running" || list[0].Pid != r.InitPid {
		t.Fatalf("runc list after restart: %+v, %v; want web.1 running as pid %d", list, err, r.InitPid)
	}
	if err := again.Kill(ctxFor(t, 30*time.Second), "web.1", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if status := r.waitExit(t, 10*time.Second); status != 0 {
		t.Errorf("echo stopped by SIGTERM: exit %d, want 0 (graceful)", status)
	}
	if code, ok := ExitCode(list[0].Bundle); !ok || code != 0 {
		t.Errorf("exit status in the bundle = %d, %v; want 0, true (what a restarted agent reads)", code, ok)
	}
	if err := again.Delete(ctxFor(t, 10*time.Second), "web.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := again.State(ctxFor(t, 10*time.Second), "web.1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("state after delete: %v, want ErrNotFound", err)
	}
}

func TestMemoryLimitIsEnforcedByTheKernel(t *testing.T) {
	e := newEnv(t)
	ref := e.push("hog:1", v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"/bin/sh"}})
	// busybox dd fills a 64 MB buffer: past a 16 MB limit.
	hog := "dd if=/dev/zero of=/dev/null bs=64M count=1"
	r, err := e.start(ref, Task{Cmd: hog, MemMB: 16})
	if err != nil {
		t.Fatal(err)
	}
	if status := r.waitExit(t, 30*time.Second); status != 137 {
		t.Errorf("hog under 16 MB: exit %d, want 137 (SIGKILL): %s", status, r.output())
	}
	if oom, err := OOMKilled(r.task.CgroupsPath); err != nil || !oom {
		t.Errorf("OOMKilled = %v, %v; want true", oom, err)
	}
	if code, ok := ExitCode(filepath.Join(r.dir, "bundle", r.ID)); !ok || code != 137 {
		t.Errorf("exit status in the bundle = %d, %v; want 137", code, ok)
	}
	// The same under 128 MB runs to its end.
	r, err = e.start(ref, Task{Cmd: hog, MemMB: 128})
	if err != nil {
		t.Fatal(err)
	}
	if status := r.waitExit(t, 30*time.Second); status != 0 {
		t.Errorf("hog under 128 MB: exit %d: %s", status, r.output())
	}
	if oom, err := OOMKilled(r.task.CgroupsPath); err != nil || oom {
		t.Errorf("OOMKilled = %v, %v; want false", oom, err)
	}
}

func TestFailuresAreClearAndQuick(t *testing.T) {
	if _, err := NewRuntime("/nonexistent/runc", t.TempDir()); err == nil || !strings.Contains(err.Error(), `container runtime "/nonexistent/runc" not found`) {
		t.Errorf("missing runtime: %v", err)
	}
	e := newEnv(t)
	ref := e.push("nobin:1", v1.Config{Entrypoint: []string{"/bin/no-such-binary"}})
	start := time.Now()
	_, err := e.start(ref, Task{})
	if err == nil || !strings.Contains(err.Error(), "no-such-binary") {
		t.Errorf("missing entrypoint binary: %v", err)
	}
	t.Logf("missing binary: %v (%v)", err, time.Since(start).Round(time.Millisecond))
	if _, err := e.rt.State(context.Background(), "never-created"); !errors.Is(err, ErrNotFound) {
		t.Errorf("state of an unknown container: %v, want ErrNotFound", err)
	}
	if err := e.rt.Delete(context.Background(), "never-created"); err != nil {
		t.Errorf("delete of an unknown container: %v", err)
	}
}

func TestDockerParametersTakeEffectInTheContainer(t *testing.T) {
	e := newEnv(t)
	ref := e.push("params:1", v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"/bin/sh"}},
		imagetest.File{Path: "bin/touch", Link: "busybox"})
	task, err := ApplyParameters(Task{
		Cmd: `echo "nofile=$(ulimit -n) cwd=$(pwd) p=$P"; touch /oops 2>/dev/null && echo rootfs-writable; touch /scratch/ok && echo scratch-writable`,
	}, []Parameter{{"read-only", "true"}, {"tmpfs", "/scratch"}, {"ulimit", "nofile=100:200"}, {"workdir", "/tmp"}, {"env", "P=param"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.start(ref, task)
	if err != nil {
		t.Fatal(err)
	}
	if status := r.waitExit(t, 30*time.Second); status != 0 {
		t.Errorf("exit %d: %s", status, r.output())
	}
	if got, want := strings.TrimSpace(r.output()), "nofile=100 cwd=/tmp p=param\nscratch-writable"; got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
}

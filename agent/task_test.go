package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// binDir holds a script the tasks can call by name.
func binDir(t *testing.T) string {
	dir := passableTempDir(t)
	script := "#!/bin/sh\necho \"hello from bindir $*\"\n"
	if err := os.WriteFile(filepath.Join(dir, "atoll-hello"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLaunchShellEnvAndSandbox(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	cfg.BinDir = binDir(t)
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)

	req := shellTask("web.1", `echo "port=$PORT0 ports=$PORTS host=$HOST"
echo "path=$PATH"
echo "sandbox=$MESOS_SANDBOX"
echo "pwd=$(pwd)"
atoll-hello shell
echo oops >&2`)
	req.Env["PORT0"] = "31001"
	req.Env["PORTS"] = "31001,31002"
	req.Env["HOST"] = "127.0.0.2"
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	env.master.waitStatus(t, "web.1", events.TaskFinished)
	if got := env.master.states("web.1"); !slices.Equal(got, []events.TaskState{events.TaskRunning, events.TaskFinished}) {
		t.Errorf("states = %v, want RUNNING, FINISHED", got)
	}

	sandbox := filepath.Join(cfg.WorkDir, "tasks", "web.1")
	out := sandboxFile(cfg, "web.1", "stdout")
	for _, want := range []string{
		"port=31001 ports=31001,31002 host=127.0.0.2\n",
		"path=" + cfg.BinDir + ":" + os.Getenv("PATH") + "\n",
		"sandbox=" + sandbox + "\n",
		"pwd=" + sandbox + "\n",
		"hello from bindir shell\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if got := sandboxFile(cfg, "web.1", "stderr"); got != "oops\n" {
		t.Errorf("stderr = %q", got)
	}
	// The terminal status was acked: the checkpoint goes, the logs stay.
	waitFor(t, 5*time.Second, "checkpoint removed", func() bool { return !checkpointExists(cfg, "web.1") })
	if len(a.reports()) != 0 {
		t.Errorf("reports after the end: %v", a.reports())
	}
}

func TestLaunchArgsUsesTaskPath(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	cfg.BinDir = binDir(t)
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)

	req := events.LaunchRequest{Task: events.Task{ID: "args.1", AppID: "/args"}, Args: []string{"atoll-hello", "a b", "c"}}
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	env.master.waitStatus(t, "args.1", events.TaskFinished)
	if got := sandboxFile(cfg, "args.1", "stdout"); got != "hello from bindir a b c\n" {
		t.Errorf("stdout = %q", got)
	}
}

func TestLaunchFailedExit(t *testing.T) {
	env := newTestEnv(t)
	a := env.start(env.newAgent(env.config()))
	id := env.registered(a)
	if ack := env.launch(id, shellTask("bad.1", "exit 3")); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	upd := env.master.waitStatus(t, "bad.1", events.TaskFailed)
	if !strings.Contains(upd.Message, "status 3") {
		t.Errorf("message = %q, want exit status 3", upd.Message)
	}
	if upd.AgentID != id || upd.Time.IsZero() {
		t.Errorf("update = %+v, want agent id and time", upd)
	}
	if got := env.master.states("bad.1"); !slices.Equal(got, []events.TaskState{events.TaskRunning, events.TaskFailed}) {
		t.Errorf("states = %v", got)
	}
}

func TestLaunchErrors(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)

	// Start failure: error ack and TASK_FAILED.
	req := events.LaunchRequest{Task: events.Task{ID: "nope.1"}, Args: []string{"/nonexistent/program"}}
	if ack := env.launch(id, req); ack.Error == "" {
		t.Error("launch of a missing program: no error")
	}
	env.master.waitStatus(t, "nope.1", events.TaskFailed)

	for _, bad := range []events.LaunchRequest{
		{Task: events.Task{ID: ""}, Cmd: "true"},
		{Task: events.Task{ID: "../escape"}, Cmd: "true"},
		{Task: events.Task{ID: "empty.1"}},
	} {
		if ack := env.launch(id, bad); ack.Error == "" {
			t.Errorf("launch %+v: no error", bad)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.WorkDir, "escape")); err == nil {
		t.Error("a task id escaped the tasks folder")
	}

	// Duplicate id: error ack; the running task is left alone.
	if ack := env.launch(id, shellTask("dup.1", "exec sleep 300")); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	ack := env.launch(id, shellTask("dup.1", "true"))
	if !strings.Contains(ack.Error, "already exists") {
		t.Errorf("duplicate launch: ack %+v", ack)
	}
	env.master.waitStatus(t, "dup.1", events.TaskRunning)
	if got := a.reports(); len(got) != 1 || got[0].State != events.TaskRunning {
		t.Errorf("reports = %v", got)
	}

	if ack := env.kill(id, events.KillRequest{TaskID: "ghost"}); ack.Error != "unknown task ghost" {
		t.Errorf("kill unknown: ack %+v", ack)
	}
}

func TestStatusRetriedUntilAcked(t *testing.T) {
	env := newTestEnv(t)
	b := env.newAgent(env.config())
	b.statusTimeout = 50 * time.Millisecond
	a := env.start(b)
	id := env.registered(a)

	env.master.mu.Lock()
	env.master.dropStatus = 3
	env.master.mu.Unlock()
	if ack := env.launch(id, shellTask("retry.1", "echo hi")); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	env.master.waitStatus(t, "retry.1", events.TaskFinished)
	env.master.mu.Lock()
	dropped := env.master.dropped
	env.master.mu.Unlock()
	if dropped != 3 {
		t.Errorf("dropped %d status requests, want 3", dropped)
	}
	if got := env.master.states("retry.1"); !slices.Equal(got, []events.TaskState{events.TaskRunning, events.TaskFinished}) {
		t.Errorf("states = %v, want RUNNING, FINISHED in order, once each", got)
	}
}

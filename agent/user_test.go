package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// requireRoot skips a test that needs an agent running as root (to switch
// users), except under CI=true, where not being root fails it.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("running tasks as users needs an agent running as root; CI=true requires root")
	}
	t.Skip("running tasks as users needs an agent running as root; not root")
}

// procIDs reads the Uid, Gid and Groups lines of /proc/<pid>/status.
func procIDs(t *testing.T, pid int) (uid, gid, groups string) {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch k {
		case "Uid":
			uid = f[0] + " " + f[1] // real, effective
		case "Gid":
			gid = f[0] + " " + f[1]
		case "Groups":
			groups = strings.Join(f, " ")
		}
	}
	return uid, gid, groups
}

func owner(t *testing.T, path string) (uid uint32, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid, fi.Mode().Perm()
}

// An app with "user":"nobody" runs as nobody: its process, what `id`
// says in it, its sandbox.
func TestTaskRunsAsAppUser(t *testing.T) {
	requireRoot(t)
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)

	req := shellTask("who.1", `id -u; id -g; id -G; echo ok > ready; exec sleep 300`)
	req.User = "nobody"
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	waitReady(t, cfg, "who.1")
	pid := checkpointOf(t, cfg, "who.1").Pid
	uid, gid, groups := procIDs(t, pid)
	if uid != "65534 65534" || gid != "65534 65534" || groups != "65534" {
		t.Errorf("task process: uid %q gid %q groups %q, want nobody's 65534 and no other group", uid, gid, groups)
	}
	if out := sandboxFile(cfg, "who.1", "stdout"); out != "65534\n65534\n65534\n" {
		t.Errorf("id in the task printed %q, want nobody's ids", out)
	}
	sandbox := filepath.Join(cfg.WorkDir, "tasks", "who.1")
	for _, p := range []string{sandbox, filepath.Join(sandbox, "stdout"), filepath.Join(sandbox, "ready")} {
		if u, _ := owner(t, p); u != 65534 {
			t.Errorf("%s belongs to uid %d, want nobody", p, u)
		}
	}
	if _, mode := owner(t, sandbox); mode != 0o700 {
		t.Errorf("sandbox mode %v, want 0700", mode)
	}
}

// A task of another app, another user, can read neither the first task's
// sandbox nor the agent's checkpoints (which hold every task's env).
func TestTaskCannotReadOtherSandboxOrCheckpoints(t *testing.T) {
	requireRoot(t)
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)

	first := shellTask("first.1", `echo first-secret > secret; echo ok > ready; exec sleep 300`)
	first.User = "nobody"
	first.Env["DB_PASSWORD"] = "hunter2-first"
	if ack := env.launch(id, first); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	waitReady(t, cfg, "first.1")

	sandbox := filepath.Join(cfg.WorkDir, "tasks", "first.1")
	cp := checkpointPath(cfg, "first.1")
	spy := func(taskID, user string) string {
		req := shellTask(taskID, fmt.Sprintf(`cat %[1]s/secret; echo "sandbox rc=$?"
ls %[1]s; echo "list rc=$?"
cat %[2]s; echo "checkpoint rc=$?"
ls %[3]s; echo "state rc=$?"`, sandbox, cp, filepath.Join(cfg.WorkDir, "state")))
		req.User = user
		if ack := env.launch(id, req); ack.Error != "" {
			t.Fatalf("launch %s: %s", taskID, ack.Error)
		}
		env.master.waitStatus(t, taskID, events.TaskFinished)
		return sandboxFile(cfg, taskID, "stdout")
	}
	// daemon: another user. nobody (the default user here, as the first
	// task's): reads no checkpoint either.
	for _, s := range []struct{ task, user string }{{"spy.1", "daemon"}, {"spy.2", ""}} {
		out := spy(s.task, s.user)
		leaks := []string{"hunter2-first", "agent-id", "agent.lock"}
		if s.user == "daemon" {
			leaks = append(leaks, "first-secret", "stdout")
		}
		for _, leak := range leaks {
			if strings.Contains(out, leak) {
				t.Errorf("task as %q read %q:\n%s", s.user, leak, out)
			}
		}
		want := []string{"checkpoint rc=1", "state rc=2"}
		if s.user == "daemon" {
			want = append(want, "sandbox rc=1", "list rc=2")
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("task as %q: output lacks %q:\n%s", s.user, w, out)
			}
		}
		if errs := sandboxFile(cfg, s.task, "stderr"); !strings.Contains(errs, "Permission denied") {
			t.Errorf("task as %q: stderr %q, want Permission denied", s.user, errs)
		}
	}

	// On disk: the agent's state is root's alone.
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{filepath.Join(cfg.WorkDir, "state"), 0o700},
		{filepath.Dir(cp), 0o700},
		{cp, 0o600},
		{filepath.Join(cfg.WorkDir, "state", "agent-id"), 0o600},
		{filepath.Join(cfg.WorkDir, "state", "agent.lock"), 0o600},
		{filepath.Join(cfg.WorkDir, "tasks"), 0o711},
	} {
		if u, mode := owner(t, c.path); u != 0 || mode != c.mode {
			t.Errorf("%s: uid %d mode %v, want root's, %v", c.path, u, mode, c.mode)
		}
	}
	if _, err := os.Stat(filepath.Join(sandbox, checkpointFile)); err == nil {
		t.Error("a checkpoint is in the sandbox")
	}
}

// An agent running as root refuses tasks as root unless allowed.
func TestRootTaskRefusedUnlessAllowed(t *testing.T) {
	requireRoot(t)
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)

	req := shellTask("root.1", `id -u`)
	req.User = "root"
	ack := env.launch(id, req)
	upd := env.master.waitStatus(t, "root.1", events.TaskFailed)
	for _, msg := range []string{ack.Error, upd.Message} {
		if !strings.Contains(msg, "refusing to run a task as root") || !strings.Contains(msg, "--allow-root-tasks") {
			t.Errorf("refusal %q, want it to say root is refused and how to allow it", msg)
		}
	}
	if sandboxExists(cfg, "root.1") {
		t.Error("a refused task got a sandbox")
	}
	a.stop(t)

	cfg2 := env.config()
	cfg2.AllowRootTasks = true
	b := env.start(env.newAgent(cfg2))
	id = env.registered(b)
	req.Task.ID = "root.2"
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch with --allow-root-tasks: %s", ack.Error)
	}
	env.master.waitStatus(t, "root.2", events.TaskFinished)
	if out := sandboxFile(cfg2, "root.2", "stdout"); out != "0\n" {
		t.Errorf("allowed root task printed uid %q, want 0", out)
	}
}

func TestUnknownUserFailsTask(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)

	req := shellTask("ghost.1", `true`)
	req.User = "atoll-no-such-user"
	ack := env.launch(id, req)
	upd := env.master.waitStatus(t, "ghost.1", events.TaskFailed)
	want := "user atoll-no-such-user does not exist on agent node1"
	if !strings.Contains(ack.Error, want) || !strings.Contains(upd.Message, want) {
		t.Errorf("ack %q, status %q: want %q", ack.Error, upd.Message, want)
	}
}

// A sandbox the task's user cannot reach fails the task, naming the
// folder in the way.
func TestUnreachableSandboxFailsTask(t *testing.T) {
	requireRoot(t)
	env := newTestEnv(t)
	cfg := env.config()
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg.WorkDir = filepath.Join(private, "agent")
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)

	ack := env.launch(id, shellTask("far.1", `echo ran`))
	upd := env.master.waitStatus(t, "far.1", events.TaskFailed)
	want := fmt.Sprintf("is not reachable by user nobody (uid 65534): no search permission on %s (mode drwx------", private)
	if !strings.Contains(upd.Message, want) || !strings.Contains(ack.Error, want) {
		t.Errorf("ack %q, status %q: want %q", ack.Error, upd.Message, want)
	}
	if out := sandboxFile(cfg, "far.1", "stdout"); out != "" {
		t.Errorf("the task ran: %q", out)
	}
}

func TestDefaultUser(t *testing.T) {
	requireRoot(t)
	env := newTestEnv(t)

	bad := env.config()
	bad.DefaultUser = "atoll-no-such-user"
	if _, err := New(bad); err == nil || !strings.Contains(err.Error(), "user atoll-no-such-user does not exist on agent node1") {
		t.Errorf("unknown default user: err = %v", err)
	}
	bad.DefaultUser = "root"
	if _, err := New(bad); err == nil || !strings.Contains(err.Error(), "--allow-root-tasks") {
		t.Errorf("default user root: err = %v", err)
	}

	cfg := env.config()
	cfg.DefaultUser = "daemon"
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	if ack := env.launch(id, shellTask("def.1", `id -un`)); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	env.master.waitStatus(t, "def.1", events.TaskFinished)
	if out := sandboxFile(cfg, "def.1", "stdout"); out != "daemon\n" {
		t.Errorf("task without a user ran as %q, want the default user daemon", out)
	}
}

// A COMMAND health check runs as the task's user.
func TestCommandCheckRunsAsTaskUser(t *testing.T) {
	requireRoot(t)
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)

	req := shellTask("hc.1", `exec sleep 300`)
	req.User = "daemon"
	req.HealthChecks = []events.HealthCheck{{
		Protocol: "COMMAND",
		Command: &struct {
			Value string `json:"value"`
		}{Value: `id -un >> checks; test "$(id -u)" = 1 && touch mine`},
		GracePeriodSeconds: 60, IntervalSeconds: 1, TimeoutSeconds: 5, MaxConsecutiveFailures: 3,
	}}
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	up := env.master.waitHealth(t, "hc.1", 1)
	if healthState(up) != "healthy" {
		t.Errorf("check ran as %q: %+v", sandboxFile(cfg, "hc.1", "checks"), up.HealthCheckResults)
	}
	if u, _ := owner(t, filepath.Join(cfg.WorkDir, "tasks", "hc.1", "mine")); u != 1 {
		t.Errorf("file the check made belongs to uid %d, want daemon's 1", u)
	}
}

// An agent on a work dir of the old layout (id file in the work dir,
// checkpoints in the sandboxes) keeps its id, re-adopts the running task
// and moves its checkpoint out of the sandbox.
func TestOldLayoutReadopted(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	pid := startAndLeave(t, env, cfg, "old.1")

	// Turn the work dir into what an older agent left.
	cp := checkpointOf(t, cfg, "old.1")
	cp.RunAs = nil
	data, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	oldCP := filepath.Join(cfg.WorkDir, "tasks", "old.1", checkpointFile)
	if err := os.WriteFile(oldCP, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(cfg.WorkDir, "state", "agent-id"), filepath.Join(cfg.WorkDir, "agent-id")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(cfg.WorkDir, "state")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfg.WorkDir, 0o700); err != nil {
		t.Fatal(err)
	}
	regs := env.master.registerCount()

	cfg.NC = env.connect()
	b := env.start(env.newAgent(cfg))
	waitFor(t, 10*time.Second, "re-registration", func() bool { return env.master.registerCount() > regs })
	reg := env.master.lastRegister()
	if reg.AgentID != "agent-1" || len(reg.Tasks) != 1 || reg.Tasks[0].State != events.TaskRunning {
		t.Fatalf("registration: id %q tasks %v, want agent-1 with old.1 running", reg.AgentID, reg.Tasks)
	}
	b.mu.Lock()
	adopted := b.tasks["old.1"].pid
	b.mu.Unlock()
	if adopted != pid {
		t.Fatalf("adopted pid %d, want %d", adopted, pid)
	}
	if _, err := os.Stat(oldCP); err == nil {
		t.Error("the checkpoint is still in the sandbox")
	}
	if got := checkpointOf(t, cfg, "old.1"); got.Pid != pid {
		t.Errorf("moved checkpoint has pid %d, want %d", got.Pid, pid)
	}
	if _, err := os.Stat(filepath.Join(cfg.WorkDir, "agent-id")); err == nil {
		t.Error("the old id file is still in the work dir")
	}
	if _, mode := owner(t, cfg.WorkDir); mode != 0o711 {
		t.Errorf("work dir mode %v, want 0711", mode)
	}
	if ack := env.kill("agent-1", events.KillRequest{TaskID: "old.1", KillGracePeriod: time.Second}); ack.Error != "" {
		t.Fatalf("kill: %s", ack.Error)
	}
	env.master.waitStatus(t, "old.1", events.TaskKilled)
}

// Who may run as whom, for agents running as root and as another user.
func TestUserPolicy(t *testing.T) {
	root := identity{Name: "root", UID: 0}
	nobody := identity{Name: "nobody", UID: 65534, GID: 65534}
	daemon := identity{Name: "daemon", UID: 1, GID: 1}
	toor := identity{Name: "toor", UID: 0}
	for _, c := range []struct {
		name      string
		self      identity
		allowRoot bool
		task      identity
		err       string // "" for allowed
	}{
		{"root agent, nobody", root, false, nobody, ""},
		{"root agent, root", root, false, root, "refusing to run a task as root (user root, uid 0) on agent h: start the agent with --allow-root-tasks to allow it"},
		{"root agent, other uid 0", root, false, toor, "refusing to run a task as root (user toor, uid 0)"},
		{"root agent, root allowed", root, true, root, ""},
		{"agent as nobody, nobody", nobody, false, nobody, ""},
		{"agent as nobody, daemon", nobody, false, daemon, "cannot run a task as user daemon on agent h: the agent runs as user nobody, not as root, so it cannot switch users"},
		{"agent as nobody, root allowed", nobody, true, root, "cannot run a task as user root"},
	} {
		p := userPolicy{host: "h", self: c.self, allowRoot: c.allowRoot}
		err := p.check(c.task)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: err = %v, want %q", c.name, err, c.err)
		}
		if c.err == "" {
			cred := p.credential(&c.task)
			if (cred != nil) != (c.self.UID == 0) || cred != nil && (cred.Uid != c.task.UID || cred.Gid != c.task.GID) {
				t.Errorf("%s: credential %+v", c.name, cred)
			}
		}
	}
}

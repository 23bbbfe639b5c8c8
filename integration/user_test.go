package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireRoot skips a test that needs agents running as root (to switch
// users), except under CI=true, where not being root fails it.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("running tasks as users needs agents running as root; CI=true requires root")
	}
	t.Skip("running tasks as users needs agents running as root; not root")
}

// procUID is the real uid of a process (all four of /proc's Uid line
// when they agree, else the line).
func procUID(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(v)
			if len(f) == 4 && f[0] == f[1] && f[1] == f[2] && f[2] == f[3] {
				return f[0]
			}
			return line
		}
	}
	return "?"
}

// An app's "user" is who its tasks run as, end to end: the API, the
// master, the agent (as root). A task of another user can read neither
// that task's sandbox, nor its env, nor the agent's checkpoints; root and
// unknown users are refused with a message in the task's TASK_FAILED.
func TestTasksRunAsTheirAppUser(t *testing.T) {
	requireRoot(t)
	c := startCluster(t, clusterOptions{agents: 1})
	events := hcFollowEvents(c)

	app := echoApp("/it/as-nobody", 1)
	app["user"] = "nobody"
	app["cmd"] = "id -u; echo first-secret > secret; exec atoll echo"
	app["env"] = map[string]string{"DB_PASSWORD": "hunter2-e2e"}
	c.mustDo("POST", "/v2/apps", app, 201, nil)
	task := c.waitRunning("/it/as-nobody", 1, 30*time.Second)[0]
	c.waitFor(10*time.Second, "atoll echo, run as nobody, to answer", func() (bool, string) {
		id, err := echoTask(task)
		return err == nil && id == task.ID, fmt.Sprintf("%q, %v", id, err)
	})
	pid := taskPIDs(c.dir, "/it/as-nobody")[0]
	if uid := procUID(t, pid); uid != "65534" {
		t.Errorf("task process %d runs as uid %s, want nobody's 65534", pid, uid)
	}
	workDir := filepath.Join(c.dir, "agent-1")
	sandbox := filepath.Join(workDir, "tasks", task.ID)
	if out, _ := os.ReadFile(filepath.Join(sandbox, "stdout")); !strings.HasPrefix(string(out), "65534\n") {
		t.Errorf("`id -u` in the task printed %q, want 65534", out)
	}

	checkpoint := filepath.Join(workDir, "state", "tasks", task.ID, "checkpoint.json")
	if _, err := os.Stat(checkpoint); err != nil {
		t.Fatalf("no checkpoint where the agent keeps them: %v", err)
	}
	spy := map[string]any{
		"id": "/it/spy", "user": "daemon", "instances": 1, "cpus": 0.1, "mem": 16,
		"cmd": fmt.Sprintf(`cat %[1]s/secret; echo "sandbox rc=$?"
cat %[2]s; echo "checkpoint rc=$?"
tr '\0' '\n' < /proc/%[3]d/environ; echo "environ rc=$?"
grep -rs hunter2 %[4]s; echo "grep rc=$?"
exec sleep 300`, sandbox, checkpoint, pid, workDir),
	}
	c.mustDo("POST", "/v2/apps", spy, 201, nil)
	spyTask := c.waitRunning("/it/spy", 1, 30*time.Second)[0]
	spyOut := filepath.Join(workDir, "tasks", spyTask.ID, "stdout")
	var out string
	c.waitFor(10*time.Second, "the spy's report", func() (bool, string) {
		data, _ := os.ReadFile(spyOut)
		out = string(data)
		return strings.Contains(out, "grep rc="), out
	})
	t.Logf("what a task as daemon got:\n%s", out)
	for _, leak := range []string{"first-secret", "hunter2"} {
		if strings.Contains(out, leak) {
			t.Errorf("a task as daemon read %q:\n%s", leak, out)
		}
	}
	for _, what := range []string{"sandbox", "checkpoint", "environ", "grep"} {
		if !strings.Contains(out, what+" rc=") || strings.Contains(out, what+" rc=0") {
			t.Errorf("spy: want %s to fail:\n%s", what, out)
		}
	}

	// Refused users: the task fails, and says why.
	for _, r := range []struct{ id, user, want string }{
		{"/it/as-root", "root", "refusing to run a task as root (user root, uid 0) on agent agent-1: start the agent with --allow-root-tasks"},
		{"/it/as-ghost", "atoll-no-such-user", "user atoll-no-such-user does not exist on agent agent-1"},
	} {
		c.mustDo("POST", "/v2/apps", map[string]any{"id": r.id, "user": r.user, "cmd": "sleep 300", "cpus": 0.1, "mem": 16}, 201, nil)
		var msg string
		c.waitFor(20*time.Second, r.id+": TASK_FAILED on /v2/events", func() (bool, string) {
			e, ok := events.find("status_update_event", func(d map[string]any) bool {
				return d["appId"] == r.id && d["taskStatus"] == "TASK_FAILED"
			})
			msg, _ = e.Data["message"].(string)
			return ok, events.summary()
		})
		if !strings.Contains(msg, r.want) {
			t.Errorf("%s failed with %q, want %q", r.id, msg, r.want)
		}
		if n := len(taskPIDs(c.dir, r.id)); n != 0 {
			t.Errorf("%s: %d processes run", r.id, n)
		}
		c.mustDo("DELETE", "/v2/apps"+r.id+"?force=true", nil, 200, nil)
	}
}

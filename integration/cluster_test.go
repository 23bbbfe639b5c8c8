package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/events/natsbus"
	"github.com/atollhq/atoll/internal/natsauth"
)

// runningTasks waits until the app has exactly n running tasks, each with
// a live process of its own and nothing more.
func (c *cluster) waitRunning(appID string, n int, timeout time.Duration) []apiTask {
	c.t.Helper()
	var ts []apiTask
	c.waitFor(timeout, fmt.Sprintf("%s: %d running tasks and processes", appID, n), func() (bool, string) {
		ts = c.tasks(appID)
		running := countState(ts, "TASK_RUNNING")
		procs := len(taskPIDs(c.dir, appID))
		return running == n && len(ts) == n && procs == n, fmt.Sprintf("%d tasks, %d running, %d processes", len(ts), running, procs)
	})
	return ts
}

func TestUniqueHostnameSpreadsAndFourthWaits(t *testing.T) {
	c := startCluster(t, clusterOptions{agents: 3})
	app := echoApp("/it/unique", 3, []string{"hostname", "UNIQUE"})
	c.mustDo("POST", "/v2/apps", app, 201, nil)
	ts := c.waitRunning("/it/unique", 3, 30*time.Second)

	agents := map[string]bool{}
	for _, task := range ts {
		agents[task.SlaveID] = true
		// Running is not yet listening: the task has just exec'd.
		c.waitFor(10*time.Second, "task "+task.ID+" to answer", func() (bool, string) {
			id, err := echoTask(task)
			return err == nil && id == task.ID, fmt.Sprintf("on %v answered %q, %v", task.Ports, id, err)
		})
	}
	if len(agents) != 3 {
		t.Fatalf("3 UNIQUE tasks on %d agents, want 3", len(agents))
	}
	_, metrics := c.do("GET", "/metrics", nil)
	for _, want := range []string{`atoll_master_tasks{state="TASK_RUNNING"} 3`, `atoll_master_agents{state="active"} 3`, "atoll_master_leader 1"} {
		if !strings.Contains(string(metrics), want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}

	c.mustDo("PUT", "/v2/apps/it/unique", map[string]any{"instances": 4}, 200, nil)
	c.waitFor(10*time.Second, "the deployment to say why the 4th instance waits", func() (bool, string) {
		var deps []struct {
			CurrentActions []struct {
				App     string `json:"app"`
				Waiting string `json:"waiting"`
			} `json:"currentActions"`
		}
		_, data := c.do("GET", "/v2/deployments", nil)
		_ = json.Unmarshal(data, &deps)
		for _, d := range deps {
			for _, a := range d.CurrentActions {
				if a.App == "/it/unique" && a.Waiting != "" {
					return true, a.Waiting
				}
			}
		}
		return false, string(data)
	})
	if ts := c.tasks("/it/unique"); len(ts) != 3 || len(taskPIDs(c.dir, "/it/unique")) != 3 {
		t.Fatalf("with a waiting 4th instance: %d tasks, %d processes; want 3 and 3", len(ts), len(taskPIDs(c.dir, "/it/unique")))
	}
}

func TestKillScaleAndDelete(t *testing.T) {
	c := startCluster(t, clusterOptions{agents: 3})
	c.mustDo("POST", "/v2/apps", echoApp("/it/scale", 3), 201, nil)
	ts := c.waitRunning("/it/scale", 3, 30*time.Second)

	// A task killed from outside is replaced.
	victim := taskPIDs(c.dir, "/it/scale")[0]
	if err := syscall.Kill(-victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	old := map[string]bool{}
	for _, task := range ts {
		old[task.ID] = true
	}
	c.waitFor(30*time.Second, "a replacement task", func() (bool, string) {
		ts := c.tasks("/it/scale")
		fresh := 0
		for _, task := range ts {
			if !old[task.ID] && task.State == "TASK_RUNNING" {
				fresh++
			}
		}
		pids := taskPIDs(c.dir, "/it/scale")
		return fresh == 1 && countState(ts, "TASK_RUNNING") == 3 && len(ts) == 3 && len(pids) == 3 && !slices.Contains(pids, victim),
			fmt.Sprintf("%d tasks, %d new, %d processes", len(ts), fresh, len(pids))
	})

	for _, n := range []int{5, 1} {
		c.mustDo("PUT", "/v2/apps/it/scale?force=true", map[string]any{"instances": n}, 200, nil)
		c.waitRunning("/it/scale", n, 30*time.Second)
	}

	c.mustDo("DELETE", "/v2/apps/it/scale", nil, 200, nil)
	c.waitFor(30*time.Second, "no process of the deleted app", func() (bool, string) {
		n := len(taskPIDs(c.dir, "/it/scale"))
		return n == 0, fmt.Sprintf("%d processes", n)
	})
	if code, _ := c.do("GET", "/v2/apps/it/scale", nil); code != 404 {
		t.Fatalf("deleted app: GET status %d, want 404", code)
	}
}

func TestMasterRestartKeepsEverything(t *testing.T) {
	c := startCluster(t, clusterOptions{agents: 3})
	c.mustDo("POST", "/v2/apps", echoApp("/it/keep", 3), 201, nil)
	before := c.waitRunning("/it/keep", 3, 30*time.Second)
	pidsBefore := taskPIDs(c.dir, "/it/keep")
	sort.Ints(pidsBefore)
	// A follower, as the sidecars run it, rides through the restart.
	src := &natsbus.Source{NC: c.nats.connect(natsauth.RoleObserver, "follower")}
	follower, mirror := eventstest.Follow(t, src, 0)
	c.waitFor(10*time.Second, "the follower's first snapshot", func() (bool, string) { return follower.Synced(), "" })

	c.signal(c.master, syscall.SIGTERM)
	c.startMaster()

	// The restarted master has the app and its tasks from its store...
	after := c.tasks("/it/keep")
	if !sameTaskIDs(before, after) {
		t.Fatalf("tasks after master restart %v, before %v", ids(after), ids(before))
	}
	// ...and keeps working: a new app runs, which takes several
	// reconcile passes, and only then do we compare the old app again.
	c.mustDo("POST", "/v2/apps", echoApp("/it/after", 1), 201, nil)
	c.waitRunning("/it/after", 1, 30*time.Second)
	c.waitFor(10*time.Second, "3 active agents after the restart", func() (bool, string) {
		n := c.activeAgents()
		return n == 3, fmt.Sprintf("%d", n)
	})

	after = c.waitRunning("/it/keep", 3, 10*time.Second)
	pidsAfter := taskPIDs(c.dir, "/it/keep")
	sort.Ints(pidsAfter)
	if !sameTaskIDs(before, after) || !slices.Equal(pidsBefore, pidsAfter) {
		t.Fatalf("after master restart: tasks %v pids %v; before: tasks %v pids %v", ids(after), pidsAfter, ids(before), pidsBefore)
	}

	// The follower saw the new epoch, resynced, and holds exactly the
	// leader's state.
	c.waitFor(10*time.Second, "the follower to equal the leader's state", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		snap, err := src.Snapshot(ctx)
		if err != nil {
			return false, err.Error()
		}
		if err := mirror.Matches(snap.State); err != nil {
			return false, err.Error()
		}
		return snap.State.Epoch == 2, fmt.Sprintf("epoch %d", snap.State.Epoch)
	})
	if follower.Resyncs() < 1 {
		t.Fatalf("follower resyncs %d across a leader restart, want at least 1", follower.Resyncs())
	}
}

func TestAgentLossReplacesAndReconciles(t *testing.T) {
	timeout := 2 * time.Second
	c := startCluster(t, clusterOptions{agents: 3, agentTimeout: timeout})
	c.mustDo("POST", "/v2/apps", echoApp("/it/loss", 3), 201, nil)
	ts := c.waitRunning("/it/loss", 3, 30*time.Second)

	// Kill the agent process of the first task; its tasks keep running.
	lost := ts[0].SlaveID
	idx := -1
	var st struct {
		Slaves []struct {
			ID       string `json:"id"`
			Hostname string `json:"hostname"`
		} `json:"slaves"`
	}
	c.mustDo("GET", "/master/state", nil, 200, &st)
	for _, s := range st.Slaves {
		if s.ID == lost {
			fmt.Sscanf(s.Hostname, "agent-%d", &idx)
		}
	}
	if idx < 1 {
		t.Fatalf("agent %s not in /master/state", lost)
	}
	onLost := map[string]bool{}
	for _, task := range ts {
		if task.SlaveID == lost {
			onLost[task.ID] = true
		}
	}
	killedAt := time.Now()
	c.signal(c.agents[idx-1], syscall.SIGKILL)

	c.waitFor(timeout+time.Second, "the lost agent's tasks to be TASK_UNREACHABLE", func() (bool, string) {
		n := 0
		for _, task := range c.tasks("/it/loss") {
			if onLost[task.ID] && task.State == "TASK_UNREACHABLE" {
				n++
			}
		}
		return n == len(onLost), fmt.Sprintf("%d of %d unreachable", n, len(onLost))
	})
	t.Logf("tasks unreachable %s after the agent was killed (agent timeout %s)", time.Since(killedAt).Round(time.Millisecond), timeout)

	c.waitFor(30*time.Second, "replacements on the other agents", func() (bool, string) {
		running := 0
		for _, task := range c.tasks("/it/loss") {
			if task.State == "TASK_RUNNING" && task.SlaveID != lost {
				running++
			}
		}
		return running == 3, fmt.Sprintf("%d running elsewhere", running)
	})

	// The agent comes back with its old tasks still running: the master
	// takes them back and kills the surplus, leaving exactly 3.
	c.startAgent(idx)
	c.waitFor(30*time.Second, "3 running tasks, 3 processes, nothing unreachable", func() (bool, string) {
		ts := c.tasks("/it/loss")
		procs := len(taskPIDs(c.dir, "/it/loss"))
		return len(ts) == 3 && countState(ts, "TASK_RUNNING") == 3 && procs == 3,
			fmt.Sprintf("%d tasks (%d running, %d unreachable), %d processes", len(ts), countState(ts, "TASK_RUNNING"), countState(ts, "TASK_UNREACHABLE"), procs)
	})
}

func TestInvalidAppChangesNothing(t *testing.T) {
	c := startCluster(t, clusterOptions{agents: 1})
	for _, tc := range []struct {
		name string
		body string
		code int
		path string
	}{
		{"malformed JSON", `{"id": "/x", "cmd": `, 400, ""},
		{"bad id", `{"id": "/Bad_Id", "cmd": "sleep 1"}`, 422, "/id"},
		{"no cmd or args", `{"id": "/x"}`, 422, ""},
		{"bad constraint", `{"id": "/x", "cmd": "sleep 1", "constraints": [["hostname", "NOPE"]]}`, 422, "/constraints(0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, data := c.do("POST", "/v2/apps", tc.body)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, data)
			}
			var body struct {
				Message string `json:"message"`
				Details []struct {
					Path   string   `json:"path"`
					Errors []string `json:"errors"`
				} `json:"details"`
			}
			if err := json.Unmarshal(data, &body); err != nil || body.Message == "" {
				t.Fatalf("error body %s: %v", data, err)
			}
			if tc.path != "" && !slices.ContainsFunc(body.Details, func(d struct {
				Path   string   `json:"path"`
				Errors []string `json:"errors"`
			}) bool {
				return d.Path == tc.path && len(d.Errors) > 0
			}) {
				t.Fatalf("no details for %s in %s", tc.path, data)
			}
			var apps struct {
				Apps []any `json:"apps"`
			}
			c.mustDo("GET", "/v2/apps", nil, 200, &apps)
			if len(apps.Apps) != 0 {
				t.Fatalf("after a refused app, /v2/apps lists %d apps", len(apps.Apps))
			}
		})
	}
}

func ids(ts []apiTask) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	sort.Strings(out)
	return out
}

func sameTaskIDs(a, b []apiTask) bool { return slices.Equal(ids(a), ids(b)) }

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Mesos's MARK_AGENT_GONE on an agent that is in fact still running: its
// tasks are replaced at once, and the agent, told it was removed, comes
// back under a new id while the master kills the orphaned tasks it ran.
func TestMarkedGoneAgentRegistersAfreshAndLosesItsTasks(t *testing.T) {
	c := startCluster(t, clusterOptions{agents: 2})
	c.mustDo("POST", "/v2/apps", echoApp("/it/gone", 2, []string{"hostname", "UNIQUE"}), 201, nil)
	before := c.waitRunning("/it/gone", 2, 30*time.Second)
	goneID := before[0].SlaveID
	var orphan apiTask
	for _, task := range before {
		if task.SlaveID == goneID {
			orphan = task
		}
	}
	orphanPID := taskPID(t, orphan.ID)

	call := map[string]any{"type": "MARK_AGENT_GONE", "mark_agent_gone": map[string]any{"agent_id": map[string]any{"value": goneID}}}
	c.mustDo("POST", "/api/v1", call, 200, nil)
	code, _ := c.do("POST", "/api/v1", map[string]any{"type": "TEARDOWN"})
	if code != 400 {
		t.Fatalf("an unsupported operator call: status %d, want 400", code)
	}

	c.waitFor(30*time.Second, "the agent back under a new id, the orphan killed, 2 tasks running again", func() (bool, string) {
		hosts := c.agentIDsByHost()
		ts := c.tasks("/it/gone")
		pids := taskPIDs(c.dir, "/it/gone")
		orphanAlive := syscall.Kill(orphanPID, 0) == nil && !isZombie(orphanPID)
		newID := hosts[orphan.Host]
		ok := newID != "" && newID != goneID && countState(ts, "TASK_RUNNING") == 2 &&
			!slices.Contains(ids(ts), orphan.ID) && len(pids) == 2 && !orphanAlive
		return ok, fmt.Sprintf("agents %v, tasks %v (%d running), %d task processes", hosts, ids(ts), countState(ts, "TASK_RUNNING"), len(pids))
	})
	if n := c.activeAgents(); n != 2 {
		t.Fatalf("%d active agents, want 2 (the gone one under its new id)", n)
	}
}

// taskPID is the pid of the process group leader of task id, from its
// MESOS_TASK_ID.
func taskPID(t *testing.T, id string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, env...), []byte("\x00MESOS_TASK_ID="+id+"\x00")) {
			continue
		}
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
			return pid
		}
	}
	t.Fatalf("no process for task %s", id)
	return 0
}

// agentIDsByHost maps each active agent's hostname to its id, from
// /master/state.
func (c *cluster) agentIDsByHost() map[string]string {
	var st struct {
		Slaves []struct {
			ID       string `json:"id"`
			Hostname string `json:"hostname"`
			Active   bool   `json:"active"`
		} `json:"slaves"`
	}
	out := map[string]string{}
	code, data := c.do("GET", "/master/state", nil)
	if code != 200 || json.Unmarshal(data, &st) != nil {
		return out
	}
	for _, s := range st.Slaves {
		if s.Active {
			out[s.Hostname] = s.ID
		}
	}
	return out
}

package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// An agent process that dies and comes back (an upgrade, a crash) takes
// its running tasks back: same ids, same processes, no restart, no second
// copy — and their health checks go on.
func TestAgentRestartReadoptsTasks(t *testing.T) {
	c := startCluster(t, clusterOptions{agents: 1, agentTimeout: 30 * time.Second})
	app := echoApp("/it/readopt", 3)
	app["healthChecks"] = []map[string]any{{"protocol": "HTTP", "path": "/health", "portIndex": 0,
		"gracePeriodSeconds": 5, "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 3}}
	c.mustDo("POST", "/v2/apps", app, 201, nil)
	before := c.waitRunning("/it/readopt", 3, 30*time.Second)
	c.waitFor(20*time.Second, "3 healthy tasks", func() (bool, string) {
		n := c.healthyTasks("/it/readopt")
		return n == 3, fmt.Sprintf("%d healthy", n)
	})
	pidsBefore := taskPIDs(c.dir, "/it/readopt")
	slices.Sort(pidsBefore)

	for round := 1; round <= 2; round++ {
		// SIGKILL: the agent gets no chance to tidy up, as in a crash.
		c.signal(c.agents[0], syscall.SIGKILL)
		if got := taskPIDs(c.dir, "/it/readopt"); len(got) != 3 {
			t.Fatalf("round %d: %d task processes after the agent died, want the 3 still running", round, len(got))
		}
		c.startAgent(1)
		c.waitFor(20*time.Second, "the restarted agent to report the same 3 healthy tasks", func() (bool, string) {
			ts := c.tasks("/it/readopt")
			return slices.Equal(ids(ts), ids(before)) && countState(ts, "TASK_RUNNING") == 3 && c.healthyTasks("/it/readopt") == 3,
				fmt.Sprintf("tasks %v (%d running, %d healthy)", ids(ts), countState(ts, "TASK_RUNNING"), c.healthyTasks("/it/readopt"))
		})
		pids := taskPIDs(c.dir, "/it/readopt")
		slices.Sort(pids)
		if !slices.Equal(pids, pidsBefore) {
			t.Fatalf("round %d: task processes %v after the agent restart, want the same %v (no restart, no duplicate)", round, pids, pidsBefore)
		}
	}

	// The health checks run again after the adoption: a task told to
	// fail its check is seen failing (and is replaced).
	victim := before[0]
	resp, err := http.Post(fmt.Sprintf("http://%s/health/fail", net.JoinHostPort(victim.IPAddresses[0].IPAddress, strconv.Itoa(victim.Ports[0]))), "text/plain", nil)
	if err != nil {
		t.Fatalf("tell %s to fail its health check: %v", victim.ID, err)
	}
	resp.Body.Close()
	c.waitFor(20*time.Second, victim.ID+" to be replaced after failing its checks", func() (bool, string) {
		ts := c.tasks("/it/readopt")
		return !slices.Contains(ids(ts), victim.ID) && countState(ts, "TASK_RUNNING") == 3,
			fmt.Sprintf("tasks %v", ids(ts))
	})

	// Re-adopted tasks are still the agent's to stop.
	c.mustDo("DELETE", "/v2/apps/it/readopt", nil, 200, nil)
	c.waitFor(20*time.Second, "the re-adopted task processes to end", func() (bool, string) {
		n := len(taskPIDs(c.dir, "/it/readopt"))
		return n == 0, fmt.Sprintf("%d processes", n)
	})
}

// healthyTasks counts the app's tasks whose every health check result is
// alive, from /v2/apps/{id}/tasks.
func (c *cluster) healthyTasks(appID string) int {
	var body struct {
		Tasks []struct {
			HealthCheckResults []struct {
				Alive bool `json:"alive"`
			} `json:"healthCheckResults"`
		} `json:"tasks"`
	}
	code, data := c.do("GET", "/v2/apps"+appID+"/tasks", nil)
	if code != 200 || json.Unmarshal(data, &body) != nil {
		return -1
	}
	n := 0
	for _, t := range body.Tasks {
		ok := len(t.HealthCheckResults) > 0
		for _, h := range t.HealthCheckResults {
			ok = ok && h.Alive
		}
		if ok {
			n++
		}
	}
	return n
}

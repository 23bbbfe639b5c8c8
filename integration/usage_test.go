package integration

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestAgentsShowTheirTasksUsage: `atoll agents` (and /master/state) show
// what an agent's tasks use, measured from their cgroups, next to what
// they were allocated: a busy loop with cpus 0.2 uses at most about 0.2
// of a core (issue 15).
func TestAgentsShowTheirTasksUsage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a master and an agent")
	}
	c := startCluster(t, clusterOptions{agents: 1, agentArgs: []string{"--usage-interval", "500ms"}})
	c.mustDo("POST", "/v2/apps", `{"id": "/spin", "cmd": "while :; do :; done", "instances": 1, "cpus": 0.2, "mem": 32}`, 201, nil)
	var cpus, mem float64
	c.waitFor(30*time.Second, "the agent's usage in /master/state", func() (bool, string) {
		var st struct {
			Slaves []struct {
				Usage *struct{ Cpus, Mem float64 } `json:"usage"`
			} `json:"slaves"`
		}
		code, data := c.do("GET", "/master/state", nil)
		if code != 200 || json.Unmarshal(data, &st) != nil || len(st.Slaves) != 1 || st.Slaves[0].Usage == nil {
			return false, fmt.Sprintf("status %d", code)
		}
		cpus, mem = st.Slaves[0].Usage.Cpus, st.Slaves[0].Usage.Mem
		return cpus > 0 && mem > 0, fmt.Sprintf("usage cpus %g mem %g MB", cpus, mem)
	})
	t.Logf("a busy loop with cpus 0.2: the agent reports %.3f cores, %.1f MB", cpus, mem)
	// An upper bound only: the machine is loaded, a loop may get less.
	if cpus > 0.2*1.5 {
		t.Errorf("usage %.3f cores for a task held to 0.2", cpus)
	}
	out, err := exec.Command(atollBin, "agents", "--master", c.api).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "CPU USE") || !strings.Contains(string(out), "0.2/4") {
		t.Errorf("atoll agents: %v\n%s", err, out)
	}
	t.Logf("atoll agents:\n%s", out)
}

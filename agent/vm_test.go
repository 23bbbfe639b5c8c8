package agent

import (
	"os"
	"strings"
	"testing"

	"github.com/atollhq/atoll/internal/testvm"
)

// vmIsolationTests run inside the VM: every test of the agent's use of
// cgroups (the same ones the host runs on v1), and the check that the
// agent chose v2 there, which runs last.
var vmIsolationTests = []string{
	"TestTaskRunsInItsCgroupFromItsFirstInstruction",
	"TestOOMKillFailsTaskWithMesosMemoryReason",
	"TestOOMKillOfAChildEndsTheTask",
	"TestKill9IsNotAnOOM",
	"TestCPUQuotaHoldsABusyLoop",
	"TestPidsLimitHolds",
	"TestReadoptedTaskKeepsItsCgroup",
	"TestParentHoldsTheAdvertisedResources",
	"TestGatedTaskGetsItsEnvExactly",
	"TestUsageRidesOnHeartbeatsOnlyEveryStatisticsInterval",
	"TestIsolationOnCgroupV2InAVM",
}

// The test machines have cgroup v1; the agent's v2 path (its parent
// beside a leaf of its own, tasks cloned into their cgroups, cpu.max,
// memory.max and memory.events) runs in a VM with cgroup v2 alone: the
// agent, an embedded NATS server on the VM's loopback and the tasks, all
// in there.
func TestIsolationOnCgroupV2InAVM(t *testing.T) {
	if testvm.Inside() {
		checkAgentOnV2(t)
		return
	}
	testvm.Run(t, vmIsolationTests...)
}

// checkAgentOnV2: inside the VM, the agent's cgroup code chose v2 and
// its parent holds the controllers its tasks need.
func checkAgentOnV2(t *testing.T) {
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "cgroup" {
			t.Errorf("a cgroup v1 hierarchy is mounted: %s", line)
		}
	}
	env := newTestEnv(t)
	cfg := env.config()
	a := env.newAgent(cfg)
	p := a.cgroups.Paths()
	if p.V2 == "" || len(p.V1) != 0 {
		t.Fatalf("the agent's parent cgroup is %+v, want a cgroup v2 path", p)
	}
	// The VM's root hands the controllers to the service only; the
	// agent must have enabled them down to its parent.
	ctrl := readControl(t, p, "", "cgroup.controllers")
	for _, c := range []string{"memory", "cpu", "pids"} {
		if !strings.Contains(" "+ctrl+" ", " "+c+" ") {
			t.Errorf("the parent %s has the controllers %q, not %s", p.V2, ctrl, c)
		}
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cgroup v2: the agent's parent is %s (controllers %s); the agent runs in %s", p.V2, ctrl, strings.TrimSpace(string(own)))
}

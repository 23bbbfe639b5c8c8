package cgroup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atollhq/atoll/internal/testvm"
)

// vmTests must pass inside the VM: every test of this package that makes
// cgroups, and the check that they made them on cgroup v2.
var vmTests = []string{
	"TestCgroupV2InAVM",
	"TestParentAndTaskGroupOnTheHost",
	"TestMemoryLimitOOMKillsWithMesosMessage",
	"TestCPUQuotaHoldsABusyLoop",
	"TestPidsLimitHolds",
	"TestReopenedParentFindsItsTasks",
}

// The test machines have cgroup v1; the v2 code runs in a VM: Debian's
// kernel with cgroup v2 alone mounted, and this package's tests (the same
// ones the host runs on v1) run there as its init's child.
func TestCgroupV2InAVM(t *testing.T) {
	if testvm.Inside() {
		checkInsideV2(t)
		return
	}
	testvm.Run(t, vmTests...)
}

// checkInsideV2: inside the VM, the tests beside this one run on cgroup
// v2, with its memory, cpu and pids controllers, and no v1 hierarchy.
func checkInsideV2(t *testing.T) {
	if v2, err := useV2(); err != nil || !v2 {
		t.Fatalf("useV2 = %v (%v) in the VM", v2, err)
	}
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "cgroup" {
			t.Errorf("a cgroup v1 hierarchy is mounted: %s", line)
		}
	}
	ctrl, err := os.ReadFile(filepath.Join(unifiedMount, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	have := strings.Fields(string(ctrl))
	for _, c := range []string{"memory", "cpu", "pids"} {
		if !strings.Contains(" "+strings.Join(have, " ")+" ", " "+c+" ") {
			t.Errorf("no %s controller in %v", c, have)
		}
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(own), "0::/"+testvm.Service) {
		t.Errorf("/proc/self/cgroup = %q, want v2's one line, under /%s", own, testvm.Service)
	}
	t.Logf("cgroup v2 alone, controllers %v; the tests run in %s", have, strings.TrimSpace(string(own)))
}

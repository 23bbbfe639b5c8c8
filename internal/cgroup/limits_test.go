package cgroup

import "testing"

func TestTaskLimitsAsMesos(t *testing.T) {
	for _, c := range []struct {
		cpus, mem float64
		want      Limits
	}{
		// cpu.shares = cpus × 1024, quota = cpus × 100 ms, mem in MB.
		{1, 128, Limits{MemoryBytes: 128 << 20, CPUShares: 1024, CPUQuota: 100_000, CPUPeriod: 100_000, Pids: 64}},
		{0.1, 32, Limits{MemoryBytes: 32 << 20, CPUShares: 102, CPUQuota: 10_000, CPUPeriod: 100_000, Pids: 64}},
		{2.5, 1000.5, Limits{MemoryBytes: 1049100288, CPUShares: 2560, CPUQuota: 250_000, CPUPeriod: 100_000, Pids: 64}},
		// Mesos's floors: 2 shares, 1 ms of quota, 32 MB.
		{0, 0, Limits{MemoryBytes: 32 << 20, CPUShares: 2, CPUQuota: 1_000, CPUPeriod: 100_000, Pids: 64}},
		{0.001, 16, Limits{MemoryBytes: 32 << 20, CPUShares: 2, CPUQuota: 1_000, CPUPeriod: 100_000, Pids: 64}},
	} {
		if got := TaskLimits(c.cpus, c.mem, 64); got != c.want {
			t.Errorf("TaskLimits(%g, %g) = %+v, want %+v", c.cpus, c.mem, got, c.want)
		}
	}
	if got := TaskLimits(1, 128, -1).Pids; got != 0 {
		t.Errorf("negative pids limit = %d, want none (0)", got)
	}
}

func TestParentLimitsAreTheAdvertisedResources(t *testing.T) {
	got := ParentLimits(2, 1024)
	want := Limits{MemoryBytes: 1 << 30, CPUQuota: 200_000, CPUPeriod: 100_000}
	if got != want {
		t.Errorf("ParentLimits(2, 1024) = %+v, want %+v", got, want)
	}
	if got := ParentLimits(0, 0); got != (Limits{}) {
		t.Errorf("ParentLimits(0, 0) = %+v, want no limits", got)
	}
}

func TestMemoryLimitMessageInStoutUnits(t *testing.T) {
	for _, c := range []struct {
		limit, used uint64
		want        string
	}{
		{32 << 20, 32 << 20, "Memory limit exceeded: Requested: 32MB Maximum Used: 32MB"},
		{64 << 20, 33558528, "Memory limit exceeded: Requested: 64MB Maximum Used: 32772KB"},
		{1 << 30, 1000, "Memory limit exceeded: Requested: 1GB Maximum Used: 1000B"},
		{1536 << 20, 0, "Memory limit exceeded: Requested: 1536MB Maximum Used: 0B"},
		{1 << 40, 3 << 40, "Memory limit exceeded: Requested: 1TB Maximum Used: 3TB"},
	} {
		if got := MemoryLimitMessage(c.limit, c.used); got != c.want {
			t.Errorf("MemoryLimitMessage(%d, %d) = %q, want %q", c.limit, c.used, got, c.want)
		}
	}
}

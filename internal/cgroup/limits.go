// Package cgroup holds every task of an agent in a cgroup of its own, under
// one parent cgroup the agent owns: the kernel enforces a task's memory,
// CPU and process count, and the agent reads its usage and its OOM kills
// there (DESIGN.md §10, §11). cgroup v1 and v2 both, through
// github.com/containerd/cgroups/v3. The test machines have v1; the tests
// run on v2 in a VM too (TestCgroupV2InAVM).
package cgroup

import (
	"math"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Limits are what the kernel holds a cgroup to. A zero field is no limit
// (CPUShares zero: the kernel's default weight).
type Limits struct {
	MemoryBytes int64
	CPUShares   uint64
	// CPUQuota is the CPU time in µs the cgroup may use per CPUPeriod.
	CPUQuota  int64
	CPUPeriod uint64
	Pids      int64
}

// As Mesos's cgroups isolators (isolators/cgroups/constants.hpp): shares
// are 1024 per cpu, the CFS period is 100 ms, and a task gets at least 2
// shares, 1 ms of quota and 32 MB.
const (
	SharesPerCPU = 1024
	minShares    = 2
	// CFSPeriod is the CFS period, in µs.
	CFSPeriod = 100_000
	minQuota  = 1_000
	// MinMemory is the least memory limit a task gets.
	MinMemory = 32 << 20
)

// TaskLimits are a task's limits from its app's cpus and mem (MB), as
// Mesos's cgroups/cpu (with --cgroups_enable_cfs) and cgroups/mem set them,
// plus a pids limit (0: none).
func TaskLimits(cpus, memMB float64, pids int64) Limits {
	return Limits{
		MemoryBytes: max(int64(memMB*(1<<20)), MinMemory),
		CPUShares:   max(uint64(cpus*SharesPerCPU), minShares),
		CPUQuota:    max(int64(math.Round(cpus*CFSPeriod)), minQuota),
		CPUPeriod:   CFSPeriod,
		Pids:        max(pids, 0),
	}
}

// ParentLimits are the agent parent's limits: what the agent advertises is
// what its tasks together may use. A zero cpus or mem leaves that
// resource unlimited.
func ParentLimits(cpus, memMB float64) Limits {
	var l Limits
	if memMB > 0 {
		l.MemoryBytes = int64(memMB * (1 << 20))
	}
	if cpus > 0 {
		l.CPUQuota, l.CPUPeriod = int64(math.Round(cpus*CFSPeriod)), CFSPeriod
	}
	return l
}

// Spec is l as an OCI runtime's linux.resources, the form the cgroups
// library (and runc, for a container task) applies. Memory, CPU and pids
// are always present, so that a cgroup v2 parent enables those
// controllers for its children.
func (l Limits) Spec() *specs.LinuxResources {
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{},
		CPU:    &specs.LinuxCPU{},
		Pids:   &specs.LinuxPids{},
	}
	if l.MemoryBytes > 0 {
		r.Memory.Limit = ptr(l.MemoryBytes)
	}
	if l.CPUShares > 0 {
		r.CPU.Shares = ptr(l.CPUShares)
	}
	if l.CPUQuota > 0 {
		r.CPU.Quota, r.CPU.Period = ptr(l.CPUQuota), ptr(l.CPUPeriod)
	}
	if l.Pids > 0 {
		r.Pids.Limit = ptr(l.Pids)
	}
	return r
}

func ptr[T any](v T) *T { return &v }

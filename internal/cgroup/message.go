package cgroup

import "fmt"

// MemoryLimitMessage is how Mesos's cgroups/mem isolator words an OOM kill
// (MemorySubsystemProcess::oomWaited): the cgroup's limit and the most it
// used, in stout's Bytes notation.
func MemoryLimitMessage(limit, maxUsed uint64) string {
	return fmt.Sprintf("Memory limit exceeded: Requested: %s Maximum Used: %s", formatBytes(limit), formatBytes(maxUsed))
}

// formatBytes writes n as stout's Bytes does: in the largest unit that
// loses nothing (32MB, 33556480B, 1536KB).
func formatBytes(n uint64) string {
	const k = 1024
	switch {
	case n == 0 || n%k != 0:
		return fmt.Sprintf("%dB", n)
	case n/k%k != 0:
		return fmt.Sprintf("%dKB", n/k)
	case n/(k*k)%k != 0:
		return fmt.Sprintf("%dMB", n/(k*k))
	case n/(k*k*k)%k != 0:
		return fmt.Sprintf("%dGB", n/(k*k*k))
	}
	return fmt.Sprintf("%dTB", n/(k*k*k*k))
}

package cgroup

import (
	"os"
	"strconv"
	"strings"
)

// Usage is what a cgroup has used, as the agent reports it (the fields of
// Mesos's ResourceStatistics it can fill).
type Usage struct {
	MemTotalBytes uint64 // now
	MemMaxBytes   uint64 // the most ever (0 where the kernel does not say)
	MemLimitBytes uint64 // 0: none
	CPUUserSecs   float64
	CPUSystemSecs float64
	CPULimit      float64 // cpus the quota allows; 0: none
	NrPeriods     uint64
	NrThrottled   uint64
	ThrottledSecs float64
}

// userHZ is the unit of cpuacct.stat: USER_HZ, 100 on every Linux ABI.
const userHZ = 100

// Usage reads the cgroup's usage. It fails with fs.ErrNotExist once the
// cgroup is gone.
func (g *Group) Usage() (Usage, error) {
	if g.paths.V2 != "" {
		return g.usageV2()
	}
	var u Usage
	var err error
	if u.MemTotalBytes, err = readUint(g.file("memory", "memory.usage_in_bytes")); err != nil {
		return u, err
	}
	u.MemMaxBytes, _ = readUint(g.file("memory", "memory.max_usage_in_bytes"))
	if lim, err := readUint(g.file("memory", "memory.limit_in_bytes")); err == nil && lim < 1<<62 {
		u.MemLimitBytes = lim
	}
	// cpuacct.usage_user/usage_sys are in ns (kernel 4.7 and later);
	// cpuacct.stat, in ticks of 10 ms, is the fallback.
	if ns, err := readUint(g.file("cpuacct", "cpuacct.usage_user")); err == nil {
		u.CPUUserSecs = float64(ns) / 1e9
	} else if user, err := readKey(g.file("cpuacct", "cpuacct.stat"), "user"); err == nil {
		u.CPUUserSecs = float64(user) / userHZ
	}
	if ns, err := readUint(g.file("cpuacct", "cpuacct.usage_sys")); err == nil {
		u.CPUSystemSecs = float64(ns) / 1e9
	} else if sys, err := readKey(g.file("cpuacct", "cpuacct.stat"), "system"); err == nil {
		u.CPUSystemSecs = float64(sys) / userHZ
	}
	quota, qerr := readInt(g.file("cpu", "cpu.cfs_quota_us"))
	period, perr := readInt(g.file("cpu", "cpu.cfs_period_us"))
	if qerr == nil && perr == nil && quota > 0 && period > 0 {
		u.CPULimit = float64(quota) / float64(period)
	}
	u.NrPeriods, _ = readKey(g.file("cpu", "cpu.stat"), "nr_periods")
	u.NrThrottled, _ = readKey(g.file("cpu", "cpu.stat"), "nr_throttled")
	if ns, err := readKey(g.file("cpu", "cpu.stat"), "throttled_time"); err == nil {
		u.ThrottledSecs = float64(ns) / 1e9
	}
	return u, nil
}

func (g *Group) usageV2() (Usage, error) {
	var u Usage
	var err error
	if u.MemTotalBytes, err = readUint(g.file("", "memory.current")); err != nil {
		return u, err
	}
	u.MemMaxBytes, _ = readUint(g.file("", "memory.peak"))
	u.MemLimitBytes, _ = readUint(g.file("", "memory.max")) // "max" reads as 0: none
	stat := g.file("", "cpu.stat")
	if us, err := readKey(stat, "user_usec"); err == nil {
		u.CPUUserSecs = float64(us) / 1e6
	}
	if us, err := readKey(stat, "system_usec"); err == nil {
		u.CPUSystemSecs = float64(us) / 1e6
	}
	u.NrPeriods, _ = readKey(stat, "nr_periods")
	u.NrThrottled, _ = readKey(stat, "nr_throttled")
	if us, err := readKey(stat, "throttled_usec"); err == nil {
		u.ThrottledSecs = float64(us) / 1e6
	}
	if data, err := os.ReadFile(g.file("", "cpu.max")); err == nil {
		q, p, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
		quota, qerr := strconv.ParseFloat(q, 64)
		period, perr := strconv.ParseFloat(p, 64)
		if qerr == nil && perr == nil && period > 0 {
			u.CPULimit = quota / period
		}
	}
	return u, nil
}

func readUint(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
}

func readInt(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
}

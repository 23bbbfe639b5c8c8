package master

import "github.com/atollhq/atoll/events"

// agentUsage is what an agent's tasks use, from the statistics its
// heartbeats carry now and then (every 10 s by default): memory as last
// read, CPU as a rate between the last two readings of each task. It is
// not state: a new leader knows it from the agent's next report of it.
type agentUsage struct {
	cpus      float64 // cores
	memBytes  uint64
	timestamp float64            // of the latest reading, Unix seconds
	cpuSecs   map[string]reading // per task, the latest reading
}

type reading struct{ cpuSecs, at float64 }

// update takes the statistics in a heartbeat's reports, if it carries any
// (most do not), and reports whether it did.
func (u *agentUsage) update(tasks []events.TaskReport) bool {
	var mem uint64
	var cpus, latest float64
	next := map[string]reading{}
	for _, t := range tasks {
		s := t.Statistics
		if s == nil {
			continue
		}
		mem += s.MemTotalBytes
		r := reading{cpuSecs: s.CpusUserTimeSecs + s.CpusSystemTimeSecs, at: s.Timestamp}
		if prev, ok := u.cpuSecs[t.TaskID]; ok && r.at > prev.at && r.cpuSecs >= prev.cpuSecs {
			cpus += (r.cpuSecs - prev.cpuSecs) / (r.at - prev.at)
		}
		next[t.TaskID] = r
		latest = max(latest, r.at)
	}
	if len(next) == 0 {
		return false
	}
	u.cpus, u.memBytes, u.timestamp, u.cpuSecs = cpus, mem, latest, next
	return true
}

// usage is an agent's latest usage, and whether it reported any.
func (l *liveness) usage(id string) (agentUsage, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.agents[id]; a != nil && a.usage.timestamp > 0 {
		return a.usage, true
	}
	return agentUsage{}, false
}

// slaveUsage is an agent's usage in /master/state: atoll's own field
// (Mesos keeps usage at each agent's /monitor/statistics), in the units
// of its resources.
type slaveUsage struct {
	Cpus      float64 `json:"cpus"` // cores used, over the last interval
	Mem       float64 `json:"mem"`  // MB
	Timestamp float64 `json:"timestamp"`
}

func slaveUsageOf(u agentUsage) *slaveUsage {
	return &slaveUsage{Cpus: u.cpus, Mem: float64(u.memBytes) / (1 << 20), Timestamp: u.timestamp}
}

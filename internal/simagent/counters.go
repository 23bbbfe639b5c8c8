package simagent

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Counters count what simulated agents saw; a fleet shares one.
type Counters struct {
	// Launches are launch requests that decoded; LaunchAcks, those acked
	// as started; LaunchDup, launches of a task the agent already held
	// (resent launches, answered task_exists).
	Launches, LaunchAcks, LaunchDup atomic.Int64
	// Kills are kill requests that decoded; KillUnknown, kills of tasks
	// the agent does not hold (answered unknown_task); KillsOfAcked,
	// kills of a running task whose launch this agent acked. Where
	// nothing is scaled down or deleted, every one of those is a launch
	// the master lost track of and killed.
	Kills, KillUnknown, KillsOfAcked atomic.Int64
	// Registrations succeeded; RegisterFails got no id (no answer in 2 s
	// or a refusal); RegisterRefused, refusals among them.
	Registrations, RegisterFails, RegisterRefused atomic.Int64
	// ReregisterAsks are heartbeat replies asking to register again.
	ReregisterAsks atomic.Int64
	// Heartbeats sent; HeartbeatFails, those without an answer in time.
	Heartbeats, HeartbeatFails atomic.Int64
	// StatusSent counts status requests (retries included; a batch is
	// one); StatusRetries, rounds the master acked none of (no answer in
	// 2 s); StatusRefused, acks carrying an error; StatusAcked, updates
	// acked.
	StatusSent, StatusRetries, StatusRefused, StatusAcked atomic.Int64

	mu sync.Mutex
	// statusRTT is how long each acked status request took, from its
	// send to the master's ack (durable), since the last TakeStatusRTTs.
	statusRTT []time.Duration
}

func (c *Counters) observeStatusRTT(d time.Duration) {
	c.mu.Lock()
	c.statusRTT = append(c.statusRTT, d)
	c.mu.Unlock()
}

// TakeStatusRTTs returns how long each status request the master acked
// took (send to ack) since the last call, and forgets them.
func (c *Counters) TakeStatusRTTs() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.statusRTT
	c.statusRTT = nil
	return out
}

// Snapshot is a moment's values of Counters.
type Snapshot struct {
	Launches, LaunchAcks, LaunchDup               int64
	Kills, KillUnknown, KillsOfAcked              int64
	Registrations, RegisterFails, RegisterRefused int64
	ReregisterAsks, Heartbeats, HeartbeatFails    int64
	StatusSent, StatusRetries, StatusRefused      int64
	StatusAcked                                   int64
}

// Snapshot reads every counter.
func (c *Counters) Snapshot() Snapshot {
	return Snapshot{
		Launches: c.Launches.Load(), LaunchAcks: c.LaunchAcks.Load(), LaunchDup: c.LaunchDup.Load(),
		Kills: c.Kills.Load(), KillUnknown: c.KillUnknown.Load(), KillsOfAcked: c.KillsOfAcked.Load(),
		Registrations: c.Registrations.Load(), RegisterFails: c.RegisterFails.Load(), RegisterRefused: c.RegisterRefused.Load(),
		ReregisterAsks: c.ReregisterAsks.Load(), Heartbeats: c.Heartbeats.Load(), HeartbeatFails: c.HeartbeatFails.Load(),
		StatusSent: c.StatusSent.Load(), StatusRetries: c.StatusRetries.Load(), StatusRefused: c.StatusRefused.Load(),
		StatusAcked: c.StatusAcked.Load(),
	}
}

// Sub is s minus an earlier snapshot.
func (s Snapshot) Sub(o Snapshot) Snapshot {
	return Snapshot{
		Launches: s.Launches - o.Launches, LaunchAcks: s.LaunchAcks - o.LaunchAcks, LaunchDup: s.LaunchDup - o.LaunchDup,
		Kills: s.Kills - o.Kills, KillUnknown: s.KillUnknown - o.KillUnknown, KillsOfAcked: s.KillsOfAcked - o.KillsOfAcked,
		Registrations: s.Registrations - o.Registrations, RegisterFails: s.RegisterFails - o.RegisterFails,
		RegisterRefused: s.RegisterRefused - o.RegisterRefused, ReregisterAsks: s.ReregisterAsks - o.ReregisterAsks,
		Heartbeats: s.Heartbeats - o.Heartbeats, HeartbeatFails: s.HeartbeatFails - o.HeartbeatFails,
		StatusSent: s.StatusSent - o.StatusSent, StatusRetries: s.StatusRetries - o.StatusRetries, StatusRefused: s.StatusRefused - o.StatusRefused,
		StatusAcked: s.StatusAcked - o.StatusAcked,
	}
}

func (s Snapshot) String() string {
	return fmt.Sprintf("%d launches (%d acked, %d already held), %d kills (%d of running acked tasks, %d of unknown tasks), "+
		"%d registrations (%d failed, %d refused), %d asked to register again, %d heartbeats (%d unanswered), "+
		"%d status requests (%d retried, %d refused) acking %d updates",
		s.Launches, s.LaunchAcks, s.LaunchDup, s.Kills, s.KillsOfAcked, s.KillUnknown,
		s.Registrations, s.RegisterFails, s.RegisterRefused, s.ReregisterAsks, s.Heartbeats, s.HeartbeatFails,
		s.StatusSent, s.StatusRetries, s.StatusRefused, s.StatusAcked)
}

package master

import (
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/atollhq/atoll/events"
)

// liveness is what the master knows of its agents' heartbeats, apart from
// the state and its lock: a heartbeat is answered without waiting for
// Master.mu, so a busy master (a large deploy, a long read) never lets an
// agent's heartbeats go unhandled and then declares it unreachable. The
// heartbeat's task report is kept for the next reconcile pass, which
// brings the state in line with it under the lock.
type liveness struct {
	mu     sync.Mutex
	agents map[string]*agentLiveness // by agent id
	byNode map[string]string         // agent id by node
	seed   maphash.Seed
	// acked is each launch's ack, by task id: a report made after the
	// agent took the task (its LaunchMark at or past the ack's), or
	// received well after the ack, that lacks the task means the task
	// is gone; an earlier one may have been made before the launch came.
	acked map[string]launchAck
}

type agentLiveness struct {
	node     string // the NATS credential's name it must speak as
	active   bool
	lastSeen time.Time // its heartbeat deadline counts from here
	// heard is when it last spoke (a heartbeat or registration): zero
	// after a leader change until it does, where lastSeen is the
	// takeover (its silence while no master ran is not its fault).
	heard  time.Time
	report *agentReport // latest heartbeat report not yet reconciled
	// version counts the changes to the agent and its tasks; settled is
	// the hash of a report that matched the state exactly at settledAt
	// (a version). The same report again, with nothing changed since,
	// can change nothing: it is neither decoded nor reconciled.
	version, settledAt uint64
	settled            uint64
	// last is the latest report accepted from it, decoded: a heartbeat
	// that repeats its bytes while the state changed (its version moved
	// on: a task launched, a status update) is kept again without being
	// decoded again. During growth most heartbeats are such.
	last *agentReport
	// usage is what its tasks use, from the reports that carry it.
	usage agentUsage
}

// agentReport is the tasks an agent said it runs, and when it said so.
type agentReport struct {
	tasks []events.TaskReport
	// launches is how far the agent had taken launches when it made the
	// report (nil from an agent that does not say).
	launches *events.LaunchMark
	at       time.Time
	sum      uint64 // hash of the heartbeat's bytes (0: not from a heartbeat)
}

// sum hashes a heartbeat's bytes.
func (l *liveness) sum(data []byte) uint64 { return maphash.Bytes(l.seed, data) }

// repeat is what a heartbeat whose bytes repeat an earlier one needs.
type repeat int

const (
	repeatNone    repeat = iota // new bytes: decode and handle it in full
	repeatSettled               // the settled report, nothing changed since: done
	repeatLast                  // the last report accepted: kept again, decoded
)

// repeated records a heartbeat from node whose bytes hash to sum, if it
// repeats the settled report of an active agent with nothing changed
// since (nothing more to do) or the last report accepted from it (kept
// again for the next pass, as decoded then); otherwise it reports
// repeatNone, and the heartbeat is handled in full.
func (l *liveness) repeated(node string, sum uint64, now time.Time) repeat {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.agents[l.byNode[node]]
	switch {
	case a == nil || !a.active || sum == 0:
		return repeatNone
	case a.settled == sum && a.settledAt == a.version:
		a.lastSeen, a.heard = now, now
		return repeatSettled
	case a.last != nil && a.last.sum == sum:
		a.lastSeen, a.heard = now, now
		a.report = &agentReport{tasks: a.last.tasks, launches: a.last.launches, at: now, sum: sum}
		return repeatLast
	}
	return repeatNone
}

// changed records a change to an agent or its tasks: its settled report
// no longer says everything.
func (l *liveness) changed(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.agents[id]; a != nil {
		a.version++
	}
}

// changedAll is changed for every agent: changes were taken back out of
// the state, which a settled report may have matched only with them.
func (l *liveness) changedAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.agents {
		a.version++
	}
}

// settle records that the report hashing to sum matched the state of
// agent id exactly, as it stands now.
func (l *liveness) settle(id string, sum uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.agents[id]; a != nil && sum != 0 {
		a.settled, a.settledAt = sum, a.version
	}
}

func newLiveness() *liveness {
	return &liveness{agents: map[string]*agentLiveness{}, byNode: map[string]string{}, acked: map[string]launchAck{}, seed: maphash.MakeSeed()}
}

// reset forgets everything: a new term starts from the stored state.
func (l *liveness) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.agents = map[string]*agentLiveness{}
	l.byNode = map[string]string{}
	l.acked = map[string]launchAck{}
}

// set records an agent's node and whether it is active (registration,
// unreachable, gone); an active agent counts as just seen.
func (l *liveness) set(id, node string, active bool, now time.Time) {
	l.setAt(id, node, active, now, false)
}

// heardFrom is set for an agent that has just registered.
func (l *liveness) heardFrom(id, node string, now time.Time) {
	l.setAt(id, node, true, now, true)
}

func (l *liveness) setAt(id, node string, active bool, now time.Time, heard bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.agents[id]
	if a == nil {
		a = &agentLiveness{}
		l.agents[id] = a
	}
	a.node, a.active = node, active
	a.version++
	l.byNode[node] = id
	if heard {
		a.heard = now
	}
	if active {
		a.lastSeen = now
	} else {
		a.report, a.last = nil, nil
	}
}

// forget drops an agent (marked gone).
func (l *liveness) forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.agents[id]; a != nil && l.byNode[a.node] == id {
		delete(l.byNode, a.node)
	}
	delete(l.agents, id)
}

// heartbeatVerdict is what a heartbeat gets.
type heartbeatVerdict int

const (
	heartbeatOK heartbeatVerdict = iota
	heartbeatReregister
	heartbeatNotYours
)

// heartbeat records a heartbeat of agent id from node at now and keeps its
// report. An agent the master does not hold as active must register
// again, which reconciles its tasks in one step.
func (l *liveness) heartbeat(id, node string, now time.Time, tasks []events.TaskReport, launches *events.LaunchMark, sum uint64) (heartbeatVerdict, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.agents[id]
	switch {
	case a == nil:
		return heartbeatReregister, ""
	case a.node != node:
		return heartbeatNotYours, a.node
	case !a.active:
		return heartbeatReregister, ""
	}
	a.lastSeen, a.heard = now, now
	a.report = &agentReport{tasks: tasks, launches: launches, at: now, sum: sum}
	a.last = a.report
	a.usage.update(tasks)
	return heartbeatOK, ""
}

// lastSeen is when an agent was last heard from (zero if never).
func (l *liveness) lastSeen(id string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.agents[id]; a != nil {
		return a.lastSeen
	}
	return time.Time{}
}

// lastHeard is when an agent last spoke to this master (zero if it has
// not since this master leads): Mesos's last_heartbeat.
func (l *liveness) lastHeard(id string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.agents[id]; a != nil {
		return a.heard
	}
	return time.Time{}
}

// takeReports hands over the reports not yet reconciled, by agent id: at
// most limit of them, the oldest first, and whether any are left.
func (l *liveness) takeReports(limit int) (map[string]*agentReport, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for id, a := range l.agents {
		if a.report != nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, false
	}
	more := len(ids) > limit
	if more {
		slices.SortFunc(ids, func(x, y string) int { return l.agents[x].report.at.Compare(l.agents[y].report.at) })
		ids = ids[:limit]
	}
	out := make(map[string]*agentReport, len(ids))
	for _, id := range ids {
		a := l.agents[id]
		out[id] = a.report
		a.report = nil
	}
	return out, more
}

// launchAcked records that an agent acked a task's launch at now, taken
// at mark (nil: the agent did not say).
func (l *liveness) launchAcked(taskID string, now time.Time, mark *events.LaunchMark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked[taskID] = launchAck{at: now, mark: mark}
}

// launchAck is when a task's launch was acked and where the agent took it.
type launchAck struct {
	at   time.Time
	mark *events.LaunchMark
}

// ackOf is a task's launch ack (ok false if not acked, or not since this
// master leads).
func (l *liveness) ackOf(taskID string) (launchAck, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.acked[taskID]
	return a, ok
}

// forgetTasks drops the launch acks of tasks that ended.
func (l *liveness) forgetTasks(ids []string) {
	if len(ids) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		delete(l.acked, id)
	}
}

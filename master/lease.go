package master

import (
	"context"
	"time"

	"github.com/go-zookeeper/zk"
)

// A leader elected through ZooKeeper acts only while it holds a lease:
// until half a session timeout after the start of its last ZooKeeper call
// that succeeded. ZooKeeper cannot expire its session (and let another
// master lead) before a whole session timeout after that call, so the
// lease runs out first. Fencing already refuses a stale leader's writes;
// the lease also stops what is not a ZooKeeper write — sync ticks, orders
// to agents, replies that say "I lead" — in a leader that was paused (a
// long GC, SIGSTOP, a frozen VM) and has not yet noticed its loss.

// leaseHeld reports whether this master may act as leader now: always
// without ZooKeeper.
func (m *Master) leaseHeld() bool {
	if m.cfg.ZK == nil {
		return true
	}
	until := m.lease.Load()
	return until != nil && time.Now().Before(*until)
}

// extendLease records a ZooKeeper call on the leader's session that
// started at start and succeeded: the renewals below, and the store's
// own calls (ZKStoreConfig.Alive). Calls end out of order, so the lease
// only ever moves forward.
func (m *Master) extendLease(start time.Time) {
	until := start.Add(m.cfg.ZK.SessionTimeout / 2)
	for {
		cur := m.lease.Load()
		if cur != nil && !until.After(*cur) {
			return
		}
		if m.lease.CompareAndSwap(cur, &until) {
			return
		}
	}
}

// actingLocked is leading with a lease; m.mu held (read or write).
func (m *Master) actingLocked() bool { return m.leading && m.leaseHeld() }

// renewLease extends the lease every quarter session timeout with a
// round trip to ZooKeeper (an exists on this master's own candidate
// node) until ctx ends. A call that fails extends nothing: the lease runs
// out while the session's fate is decided.
func (m *Master) renewLease(ctx context.Context, conn *zk.Conn, node string) {
	t := time.NewTicker(m.cfg.ZK.SessionTimeout / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		if ok, _, err := conn.Exists(node); err == nil && ok {
			m.extendLease(start)
		}
	}
}

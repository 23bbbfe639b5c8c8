package master

import (
	"errors"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// A leader whose lease ran out (it has not heard from ZooKeeper for half a
// session timeout) neither says it leads nor commits, before anything
// tells it that it lost.
func TestLeaseBoundsLeadership(t *testing.T) {
	e := testZK(t)
	ns := eventstest.StartNATS(t)
	m := startZKMaster(t, ns, e.Servers, zkRoot(t), "m1")
	leads(t, m, 20*time.Second)

	past := time.Now().Add(-time.Second)
	m.lease.Store(&past) // as after a pause longer than the lease
	if m.Leading() {
		t.Fatal("Leading() with an expired lease")
	}
	if err := m.commit(events.PutApp(eventstest.App("/late", 1))); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("commit with an expired lease: %v, want ErrNotLeader", err)
	}
	// The renewal (every quarter session timeout) gives it back.
	eventually(t, 5*time.Second, "the lease renewed", m.Leading)
}

// The store's own calls on the leader's session renew the lease, so a
// store busy with the session (ZooKeeper answers its calls in order)
// cannot starve the renewals into a lapse; the lease only moves forward.
func TestStoreCallsRenewTheLease(t *testing.T) {
	conn := zkConnect(t, testZK(t).Servers)
	var starts []time.Time
	s := NewZKStore(conn, ZKStoreConfig{Root: zkRoot(t), Owner: "m1",
		Alive: func(start time.Time) { starts = append(starts, start) }})
	st := load(t, s)
	afterLoad := len(starts)
	before := time.Now()
	zkAppend(t, s, st, st.Epoch+1, events.PutApp(eventstest.App("/web", 1)))
	if len(starts) <= afterLoad || starts[len(starts)-1].Before(before) {
		t.Fatalf("a Multi that succeeded renewed nothing: %v", starts)
	}
	// Another session's calls say nothing about this one.
	other := NewZKStore(zkConnect(t, testZK(t).Servers), ZKStoreConfig{Root: zkRoot(t), Owner: "m2"})
	other.cfg.Alive = func(time.Time) { t.Error("a call on another session renewed the lease") }
	other.noteAlive(conn, time.Now())

	m := &Master{cfg: Config{ZK: &ZKConfig{SessionTimeout: 4 * time.Second}}}
	now := time.Now()
	m.extendLease(now)
	m.extendLease(now.Add(-time.Second)) // a call that started earlier ended later
	if got := *m.lease.Load(); !got.Equal(now.Add(2 * time.Second)) {
		t.Errorf("lease until %v, want %v: it moved back", got, now.Add(2*time.Second))
	}
}

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

package events_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/events/natsbus"
	"github.com/atollhq/atoll/internal/natsauth"
)

// forgedApp is what an attacker would publish with the next seq: an app
// that sends a vhost's traffic elsewhere.
func forgedApp(l *eventstest.Leader) events.Event {
	evil := eventstest.App("/forged", 1)
	evil.Labels = map[string]string{"HAPROXY_0_VHOST": "bank.example"}
	return events.PutApp(evil).Stamp(l.State(), l.Epoch(), eventstest.T0)
}

// waitForged waits until the follower has applied the forged app.
func waitForged(t *testing.T, m *eventstest.Mirror) {
	t.Helper()
	eventstest.WaitFor(t, eventstest.DefaultWait, func() error {
		if st := m.State(); st == nil || st.Apps["/forged"].ID == "" {
			return fmt.Errorf("the follower has not applied the forged event yet")
		}
		return nil
	})
}

// logBuffer collects a follower's log lines; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// followLogged runs a follower whose log goes to the returned buffer.
func followLogged(t *testing.T, src events.Source) (*events.Follower, *eventstest.Mirror, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	m := &eventstest.Mirror{}
	f := &events.Follower{Source: src, Handler: m, SyncTimeout: noTicks, Log: slog.New(slog.NewTextHandler(logs, nil))}
	eventstest.Start(t, f)
	return f, m, logs
}

// A forged event with the next seq is applied (it looks like the leader's);
// the leader's real event with that seq is then a duplicate. Only the
// digest on the next sync tick tells the follower its state is not the
// leader's: it resyncs, and says so with both digests.
func TestFollowerForgedEventRevealedByDigest(t *testing.T) {
	l := eventstest.NewLeader()
	eventstest.Churn(l, 50)
	f, m, logs := followLogged(t, l)
	m.WaitEqual(t, l)
	before := l.Tick() // matches: no resync
	wantResyncs(t, f, 0)

	forged := forgedApp(l)
	l.Inject(forged)
	waitForged(t, m)
	real := l.Commit(events.PutApp(eventstest.App("/real", 1)))
	if real.Seq != forged.Seq {
		t.Fatalf("real event at seq %d, forged at %d", real.Seq, forged.Seq)
	}
	tick := l.Tick()
	m.WaitEqual(t, l)
	wantResyncs(t, f, 1)

	// The warning names the leader's digest and the follower's.
	data, err := events.EncodeEvent(forged)
	if err != nil {
		t.Fatal(err)
	}
	ours := events.ChainAt(before.Epoch, before.Seq, before.Digest)
	ours.Add(forged.Epoch, forged.Seq, data)
	eventstest.WaitFor(t, eventstest.DefaultWait, func() error {
		s := logs.String()
		if !strings.Contains(s, "level=WARN") || !strings.Contains(s, tick.Digest.String()) || !strings.Contains(s, ours.At(forged.Epoch, forged.Seq).String()) {
			return fmt.Errorf("no warning with digests %s and %s in the log:\n%s", tick.Digest, ours.At(forged.Epoch, forged.Seq), s)
		}
		return nil
	})
}

// While the leader is quiet, a forged next event puts the follower ahead of
// the leader's ticks: the next tick reveals it, without waiting for the
// leader's next event.
func TestFollowerForgedEventRevealedByQuietTick(t *testing.T) {
	l := eventstest.NewLeader()
	eventstest.Churn(l, 50)
	f, m, logs := followLogged(t, l)
	m.WaitEqual(t, l)

	l.Inject(forgedApp(l))
	waitForged(t, m)
	l.Tick()
	m.WaitEqual(t, l)
	wantResyncs(t, f, 1)
	if !strings.Contains(logs.String(), "never published") {
		t.Errorf("log does not say why:\n%s", logs)
	}
}

// Ticks flowing all the time, the follower starting in the middle of
// commits with ticks in its buffer from before its snapshot: digests agree
// and nothing is stale enough to call for a resync.
func TestFollowerDigestsAgree(t *testing.T) {
	l := eventstest.NewLeader()
	stopTicks := l.Ticking(time.Millisecond)
	defer stopTicks()
	stop := churnInBackground(t, l)

	f, m := eventstest.Follow(t, l, noTicks)
	eventstest.WaitFor(t, eventstest.DefaultWait, func() error {
		if m.AppliedCount() < 2000 {
			return fmt.Errorf("follower applied %d events since its snapshot, waiting for 2000", m.AppliedCount())
		}
		return nil
	})
	stop()
	l.Tick()
	m.WaitEqual(t, l)
	wantResyncs(t, f, 0)

	// And after an epoch change, the new epoch's digests agree too.
	l.NewEpoch()
	eventstest.Churn(l, 200)
	l.Tick()
	m.WaitEqual(t, l)
	eventstest.Churn(l, 20)
	l.Tick()
	m.WaitEqual(t, l)
	wantResyncs(t, f, 1)
}

// Ticks and a forged event that arrive while the first snapshot is on its
// way wait in the buffer; they are judged against that snapshot.
func TestFollowerTicksBeforeFirstSnapshot(t *testing.T) {
	t.Run("honest", func(t *testing.T) {
		l := eventstest.NewLeader()
		eventstest.Churn(l, 20)
		src := &hookedSource{Leader: l, hook: func() {
			l.Tick() // at the snapshot's seq
			eventstest.Churn(l, 5)
			l.Tick()
		}}
		f, m := eventstest.Follow(t, src, noTicks)
		m.WaitEqual(t, l)
		wantResyncs(t, f, 0)
	})
	t.Run("forged", func(t *testing.T) {
		l := eventstest.NewLeader()
		eventstest.Churn(l, 20)
		src := &hookedSource{Leader: l, hook: func() {
			l.Inject(forgedApp(l))
			l.Commit(events.PutApp(eventstest.App("/real", 1)))
			l.Tick()
		}}
		f, m := eventstest.Follow(t, src, noTicks)
		m.WaitEqual(t, l)
		wantResyncs(t, f, 1)
	})
}

// unknownDigests is a leader whose snapshots carry no digest (as one
// from before digests would send).
type unknownDigests struct{ *eventstest.Leader }

func (s unknownDigests) Snapshot(ctx context.Context) (events.Snapshot, error) {
	snap, err := s.Leader.Snapshot(ctx)
	snap.Digest = events.Digest{}
	return snap, err
}

// A follower that does not know the digest at its snapshot compares
// nothing: a digest it made up would never match.
func TestFollowerUnknownDigestComparesNothing(t *testing.T) {
	l := eventstest.NewLeader()
	eventstest.Churn(l, 20)
	f, m := eventstest.Follow(t, unknownDigests{l}, noTicks)
	m.WaitEqual(t, l)
	for range 5 {
		eventstest.Churn(l, 7)
		l.Tick()
	}
	m.WaitEqual(t, l)
	wantResyncs(t, f, 0)
}

// Over a real NATS server: a client that can publish on the event subjects
// sends the next seq before the leader does, exactly as the leader encodes
// events; the leader's real event follows, then a tick.
func TestFollowerForgedEventOverNATS(t *testing.T) {
	srv := eventstest.StartNATS(t)
	subj := events.Subjects{}
	l := eventstest.NewLeader()
	eventstest.Churn(l, 100)
	l.Serve(t, eventstest.Connect(t, srv), subj)

	src := &natsbus.Source{NC: srv.ConnectAs(t, natsauth.RoleSidecar, "h1"), Subjects: subj}
	f, m := eventstest.Follow(t, src, noTicks)
	m.WaitEqual(t, l)

	forged := forgedApp(l)
	data, err := events.EncodeEvent(forged)
	if err != nil {
		t.Fatal(err)
	}
	// Only a master credential may publish events: held on purpose.
	attacker := srv.ConnectAs(t, natsauth.RoleMaster, "forger")
	if err := attacker.Publish(subj.Event(forged.Type), data); err != nil {
		t.Fatal(err)
	}
	waitForged(t, m)
	l.Commit(events.PutApp(eventstest.App("/real", 1)))
	l.Tick()
	m.WaitEqual(t, l)
	wantResyncs(t, f, 1)
	if st := m.State(); st.Apps["/forged"].ID != "" {
		t.Errorf("the forged app survived the resync")
	}
}

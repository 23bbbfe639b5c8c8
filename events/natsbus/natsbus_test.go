package natsbus_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/events/natsbus"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/nats-io/nats.go"
)

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A snapshot far larger than a NATS message arrives whole: it travels
// gzipped.
func TestSnapshotRoundTrip(t *testing.T) {
	srv := eventstest.StartNATS(t)
	nc := eventstest.Connect(t, srv)
	subj := events.Subjects{}

	l := eventstest.NewLeader()
	l.Commit(events.PutAgent(eventstest.Agent("a1")))
	l.Commit(events.PutApp(eventstest.App("/web", 5000)))
	for i := range 30000 {
		task := eventstest.Task(fmt.Sprintf("web.%05d", i), "/web", "a1", events.TaskRunning)
		task.Ports = []int{31000 + i%1000}
		l.Commit(events.PutTask(task))
	}
	l.Commit(events.PutDeployment(eventstest.Deployment("d1", "/web")))
	want := l.State()
	raw, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) <= nc.MaxPayload() {
		t.Fatalf("test state is %d bytes, want more than the %d bytes NATS carries", len(raw), nc.MaxPayload())
	}

	leaderNC := eventstest.Connect(t, srv)
	sub, err := natsbus.ServeSnapshots(leaderNC, subj, func() (events.Snapshot, error) {
		return events.Snapshot{State: want.Clone()}, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	// The request goes out on another connection: make sure the server
	// knows the responder first.
	if err := leaderNC.Flush(); err != nil {
		t.Fatal(err)
	}

	// 30,000 tasks to encode, gzip and decode under -race on a busy
	// machine: the deadline is for arrival, not speed.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	got, err := (&natsbus.Source{NC: nc, Subjects: subj}).Snapshot(ctx)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if err := eventstest.Equal(got.State, want); err != nil {
		t.Errorf("snapshot differs from the leader's state (got, want): %v", err)
	}
}

// A snapshot carries the digest it was served with, and no env.
func TestSnapshotDigestAndRedaction(t *testing.T) {
	srv := eventstest.StartNATS(t)
	nc := eventstest.Connect(t, srv)
	l := eventstest.NewLeader()
	l.Commit(events.PutApp(secretApp("/web")))
	var enc events.Encoder
	d, _ := enc.Event(events.DeleteApp("/x").Stamp(events.NewState(), 1, eventstest.T0))
	var want events.Chain
	want.Add(1, 1, d)
	sub, err := natsbus.ServeSnapshots(nc, events.Subjects{}, func() (events.Snapshot, error) {
		return events.Snapshot{State: l.State(), Digest: want.At(1, 1)}, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	snap, err := (&natsbus.Source{NC: nc}).Snapshot(ctxTimeout(t))
	if err != nil {
		t.Fatal(err)
	}
	if snap.Digest != want.At(1, 1) || snap.Digest.IsZero() {
		t.Errorf("snapshot digest %s, want %s", snap.Digest, want.At(1, 1))
	}
	if env := snap.State.Apps["/web"].Env; len(env) != 0 {
		t.Errorf("snapshot app env %v", env)
	}
	if l.State().Apps["/web"].Env["DB_PASSWORD"] != "hunter2" {
		t.Errorf("serving a snapshot changed the leader's state")
	}
}

func TestSnapshotRefused(t *testing.T) {
	srv := eventstest.StartNATS(t)
	nc := eventstest.Connect(t, srv)
	sub, err := natsbus.ServeSnapshots(nc, events.Subjects{}, func() (events.Snapshot, error) {
		return events.Snapshot{}, errors.New("not the leader")
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	st, err := (&natsbus.Source{NC: nc}).Snapshot(ctxTimeout(t))
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "not the leader") {
		t.Errorf("Snapshot = %v, %v; want the leader's refusal", st, err)
	}
}

func TestSnapshotNoLeader(t *testing.T) {
	srv := eventstest.StartNATS(t)
	_, err := (&natsbus.Source{NC: srv.ConnectAs(t, natsauth.RoleObserver, "follower")}).Snapshot(ctxTimeout(t))
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("Snapshot with nobody serving = %v, want ErrNoResponders", err)
	}
}

func gz(t *testing.T, s string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Replies that are not what ServeSnapshots sends are errors, never an
// empty state.
func TestSnapshotBadReplies(t *testing.T) {
	srv := eventstest.StartNATS(t)
	nc := eventstest.Connect(t, srv)
	src := &natsbus.Source{NC: nc}

	tests := []struct {
		name    string
		reply   []byte
		wantErr string // "" for success
	}{
		{"not gzip", []byte(`{"state":{}}`), "decompress"},
		{"truncated gzip", gz(t, `{"state":{"epoch":1}}`)[:20], "decompress"},
		{"not JSON", gz(t, `{"state":`), "decode"},
		{"no state", gz(t, `{}`), "without state"},
		{"bad digest", gz(t, `{"state":{"epoch":3,"seq":7},"digest":"zz"}`), "digest"},
		{"state without maps", gz(t, `{"state":{"epoch":3,"seq":7}}`), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub, err := nc.Subscribe(events.Subjects{}.Snapshot(), func(m *nats.Msg) { _ = m.Respond(tc.reply) })
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()

			snap, err := src.Snapshot(ctxTimeout(t))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Snapshot = %v, %v; want an error containing %q", snap.State, err, tc.wantErr)
				}
				return
			}
			st := snap.State
			if err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			want := events.NewState()
			want.Epoch, want.Seq = 3, 7
			if err := eventstest.Equal(st, want); err != nil {
				t.Errorf("snapshot (got, want): %v", err)
			}
			// Normalized: the follower can apply to it straight away.
			if err := st.Apply(events.PutAgent(eventstest.Agent("a1")).Stamp(st, 3, eventstest.T0)); err != nil {
				t.Errorf("Apply on the snapshot: %v", err)
			}
		})
	}
}

// Events arrive on their type's subject, decoded, in publish order; what
// does not decode goes to OnBadEvent; stop ends the subscription.
func TestPublishSubscribe(t *testing.T) {
	srv := eventstest.StartNATS(t)
	pubNC := eventstest.Connect(t, srv)
	subj := events.Subjects{}
	pub := &natsbus.Publisher{NC: pubNC, Subjects: subj}

	subjects := make(chan string, 10)
	raw, err := pubNC.Subscribe(subj.AllEvents(), func(m *nats.Msg) { subjects <- m.Subject })
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Unsubscribe()

	got := make(chan events.Event, 10)
	bad := make(chan error, 10)
	src := &natsbus.Source{NC: srv.ConnectAs(t, natsauth.RoleObserver, "follower"), Subjects: subj, OnBadEvent: func(err error) { bad <- err }}
	stop, err := src.Subscribe(func(e events.Event, _ []byte) { got <- e })
	if err != nil {
		t.Fatal(err)
	}
	if err := pubNC.Flush(); err != nil {
		t.Fatal(err)
	}

	s := events.NewState()
	e1 := events.PutApp(eventstest.App("/web", 1)).Stamp(s, 1, eventstest.T0)
	e2 := events.DeleteApp("/web").Stamp(&events.State{Seq: 1}, 1, eventstest.T0)
	if err := pub.Publish(e1); err != nil {
		t.Fatal(err)
	}
	if err := pubNC.Publish(subj.Event(events.AppUpdated), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(e2); err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishSync(1, 2, eventstest.T0); err != nil {
		t.Fatal(err)
	}

	for i, want := range []events.Event{e1, e2, {Epoch: 1, Seq: 2, Type: events.Sync, Time: eventstest.T0}} {
		select {
		case e := <-got:
			if e.SSEID() != want.SSEID() || e.Type != want.Type || e.ID != want.ID || !e.Time.Equal(want.Time) {
				t.Errorf("event %d = %+v, want %+v", i, e, want)
			}
			if want.App != nil && (e.App == nil || e.App.Instances != want.App.Instances) {
				t.Errorf("event %d app = %+v, want %+v", i, e.App, want.App)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d never arrived", i)
		}
	}
	select {
	case <-bad:
	case <-time.After(5 * time.Second):
		t.Errorf("OnBadEvent never called for garbage")
	}
	for _, want := range []string{"atoll.events.app_updated", "atoll.events.app_updated", "atoll.events.app_removed", "atoll.events.sync"} {
		if s := <-subjects; s != want {
			t.Errorf("published on %q, want %q", s, want)
		}
	}

	stop()
	if err := pub.Publish(e1); err != nil {
		t.Fatal(err)
	}
	// The raw subscriber is on the publishing connection: once it has the
	// event, the server has routed it to every subscriber it had.
	<-subjects
	if err := src.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		t.Errorf("event %s after stop", e.SSEID())
	default:
	}
}

func secretApp(id string) events.App {
	a := eventstest.App(id, 1)
	a.Env = map[string]string{"DB_PASSWORD": "hunter2"}
	return a
}

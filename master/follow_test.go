package master

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/events/natsbus"
	"github.com/atollhq/atoll/internal/natsauth"
)

// runMaster runs a master that leads at once (local store), with its sync
// ticks and snapshot server, until the test ends.
func runMaster(t *testing.T) (*Master, *eventstest.NATS) {
	t.Helper()
	return runMasterWith(t, Config{ID: "master-1", Hostname: "m1.test"})
}

// runMasterWith is runMaster with more of the config: NC, Store and Log
// are filled in.
func runMasterWith(t *testing.T, cfg Config) (*Master, *eventstest.NATS) {
	t.Helper()
	srv := eventstest.StartNATS(t)
	cfg.NC, cfg.Store, cfg.Log = eventstest.Connect(t, srv), &MemStore{}, slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("master: %v", err)
		}
	})
	eventstest.WaitFor(t, 5*time.Second, func() error {
		if !m.Leading() {
			return fmt.Errorf("master does not lead")
		}
		return nil
	})
	return m, srv
}

// A follower of a real master (as the DNS and LB sidecars run it) is fed a
// forged event with the next seq by a client that may publish on the event
// subjects. The leader's own event with that seq is then a duplicate to
// the follower; the master's next sync tick carries a digest the
// follower's does not match, and the follower resyncs to the leader's
// state.
func TestForgedEventFollowerResyncsToMaster(t *testing.T) {
	m, srv := runMaster(t)
	h := m.Handler()
	src := &natsbus.Source{NC: srv.ConnectAs(t, natsauth.RoleSidecar, "h1")}
	f, mirror := eventstest.Follow(t, src, 0)
	if res := call(t, h, "POST", "/v2/apps", webApp); res.status != 201 {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	leader := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		snap, err := src.Snapshot(ctx)
		if err != nil {
			return err
		}
		return mirror.Matches(snap.State)
	}
	eventstest.WaitFor(t, 5*time.Second, leader)

	// The master may commit on its own (the deployment waits for agents):
	// forge the next seq until the follower takes the forgery.
	// Only a master credential may publish events (the server refuses
	// every other): this test holds one on purpose.
	attacker := srv.ConnectAs(t, natsauth.RoleMaster, "forger")
	eventstest.WaitFor(t, 5*time.Second, func() error {
		var st *events.State
		m.View(func(s *events.State) { st = s.Clone() })
		evil := st.Apps["/web"]
		evil.ID = "/forged"
		evil.Labels = map[string]string{"HAPROXY_0_VHOST": "bank.example"}
		forged := events.PutApp(evil).Stamp(st, st.Epoch, time.Now().UTC())
		data, err := events.EncodeEvent(forged)
		if err != nil {
			t.Fatal(err)
		}
		if err := attacker.Publish(events.Subjects{}.Event(forged.Type), data); err != nil {
			t.Fatal(err)
		}
		if err := attacker.Flush(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(deadline) {
			if st := mirror.State(); st != nil && st.Apps["/forged"].ID != "" {
				return nil
			}
			time.Sleep(5 * time.Millisecond)
		}
		return fmt.Errorf("the follower did not apply the forged event at seq %d", forged.Seq)
	})

	// The leader's next event takes the forged seq.
	if res := call(t, h, "POST", "/v2/apps", `{"id":"real","cmd":"sleep 1000","instances":1,"cpus":0.1,"mem":32}`); res.status != 201 {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	eventstest.WaitFor(t, 10*time.Second, leader)
	if f.Resyncs() == 0 {
		t.Errorf("follower caught up without a resync")
	}
	if st := mirror.State(); st.Apps["/forged"].ID != "" || st.Apps["/real"].ID == "" {
		t.Errorf("follower's apps after the resync: %v", st.SortedApps())
	}
}

// Sidecars and observers read events and snapshots on NATS: the env of an
// app created through the API is in neither, while the API, which guards
// its reads, still shows it.
func TestNATSCarriesNoEnv(t *testing.T) {
	const secret = "s3cret-db-password"
	m, srv := runMaster(t)
	h := m.Handler()

	observer := srv.ConnectAs(t, natsauth.RoleObserver, "observer")
	var mu sync.Mutex
	var seen [][]byte
	sub, err := observer.Subscribe(events.Subjects{}.AllEvents(), func(msg *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, msg.Data)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := observer.Flush(); err != nil {
		t.Fatal(err)
	}

	app := `{"id":"db","cmd":"sleep 1000","instances":1,"cpus":0.1,"mem":32,"env":{"DB_PASSWORD":"` + secret + `"}}`
	if res := call(t, h, "POST", "/v2/apps", app); res.status != 201 {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	if res := call(t, h, "GET", "/v2/apps/db", ""); !strings.Contains(string(res.body), secret) {
		t.Errorf("the API lost the app's env: %s", res.body)
	}
	// Wait for the app's event and a sync tick after it.
	eventstest.WaitFor(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		app, tick := false, false
		for _, data := range seen {
			app = app || bytes.Contains(data, []byte(`"/db"`))
			tick = tick || (app && bytes.Contains(data, []byte(`"type":"sync"`)))
		}
		if !tick {
			return fmt.Errorf("%d messages, the app's event and a tick after it not among them", len(seen))
		}
		return nil
	})
	mu.Lock()
	for _, data := range seen {
		if bytes.Contains(data, []byte(secret)) || bytes.Contains(data, []byte("DB_PASSWORD")) {
			t.Errorf("event on NATS with the app's env: %s", data)
		}
	}
	mu.Unlock()

	reply, err := observer.Request(events.Subjects{}.Snapshot(), nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(reply.Data))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"/db"`)) {
		t.Fatalf("snapshot without the app: %s", raw)
	}
	if bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, []byte("DB_PASSWORD")) {
		t.Errorf("snapshot on NATS with the app's env: %s", raw)
	}
}

// TestRepliesOnlyToInboxes: a snapshot request or a registration whose
// reply subject is an event subject is not answered there (the master
// would publish a snapshot as an "event" for its requester), and the
// master counts the refusal.
func TestRepliesOnlyToInboxes(t *testing.T) {
	m, srv := runMaster(t)
	subj := events.Subjects{}
	watcher := srv.ConnectAs(t, natsauth.RoleObserver, "watcher")
	onEvents, err := watcher.SubscribeSync(subj.Event(events.AppUpdated))
	if err != nil {
		t.Fatal(err)
	}
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}
	sidecar := srv.ConnectAs(t, natsauth.RoleSidecar, "h1")
	agent := srv.ConnectAs(t, natsauth.RoleAgent, "h1")
	if err := sidecar.PublishRequest(subj.Snapshot(), subj.Event(events.AppUpdated), nil); err != nil {
		t.Fatal(err)
	}
	if err := agent.PublishRequest(subj.Register("h1"), subj.Event(events.AppUpdated), []byte(`{"hostname":"h1","ip":"127.0.0.9"}`)); err != nil {
		t.Fatal(err)
	}
	_ = sidecar.Flush()
	_ = agent.Flush()
	eventstest.WaitFor(t, 5*time.Second, func() error {
		if n := testutil.ToFloat64(m.metrics.refused.WithLabelValues(refusedReplySubject)); n != 2 {
			return fmt.Errorf("refused %s = %v, want 2", refusedReplySubject, n)
		}
		return nil
	})
	if msg, err := onEvents.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("the master answered on an event subject: %.80q", msg.Data)
	}
}

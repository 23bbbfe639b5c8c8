package master

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/events/natsbus"
	"github.com/atollhq/atoll/internal/natsauth"
)

// A sidecar that (re)syncs gets its snapshot while the master's lock is
// held for writing (a long decision at 100,000 tasks): the snapshot comes
// from the published state, not from the working state under that lock.
// It holds what is published, with the digest at its seq.
func TestSnapshotServedWhileMasterLockHeld(t *testing.T) {
	m, srv := runMaster(t)
	if res := call(t, m.Handler(), "POST", "/v2/apps", webApp); res.status != 201 {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	src := &natsbus.Source{NC: srv.ConnectAs(t, natsauth.RoleSidecar, "h1")}

	m.mu.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	snap, err := src.Snapshot(ctx)
	cancel()
	m.mu.Unlock()

	if err != nil {
		t.Fatalf("snapshot while the master's lock is held: %v", err)
	}
	if _, ok := snap.State.Apps["/web"]; !ok {
		t.Errorf("snapshot at seq %d has apps %v, want /web", snap.State.Seq, snap.State.Apps)
	}
	if snap.Digest.IsZero() {
		t.Errorf("snapshot at %d-%d carries no digest", snap.State.Epoch, snap.State.Seq)
	}
}

// recordingStore keeps, in order, the events its store accepted.
type recordingStore struct {
	*gatedStore
	mu     sync.Mutex
	stored []events.Event
}

func (r *recordingStore) AppendAll(evs []events.Event) (int, error) {
	n, err := r.gatedStore.AppendAll(evs)
	r.mu.Lock()
	r.stored = append(r.stored, evs[:n]...)
	r.mu.Unlock()
	return n, err
}

func (r *recordingStore) history() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.stored...)
}

// framesAsRead is what a client reads of frames: one message per frame.
func framesAsRead(frames []sseFrame) []sseMsg {
	var out []sseMsg
	for _, f := range frames {
		var m sseMsg
		for _, line := range strings.Split(strings.TrimSpace(string(f.data)), "\n") {
			switch {
			case strings.HasPrefix(line, "id: "):
				m.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				m.typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				m.data = strings.TrimPrefix(line, "data: ")
			}
		}
		out = append(out, m)
	}
	return out
}

// /v2/events carries, in seq order, exactly the Marathon events that the
// stored history makes when each event is compared with the state before
// it (what the master computed under its lock before the stream followed
// the published state), and nothing of a write the store refused.
func TestEventStreamFollowsStoredHistory(t *testing.T) {
	store := &recordingStore{gatedStore: &gatedStore{}}
	m, err := New(Config{NC: eventstest.Connect(t, eventstest.StartNATS(t)), Store: store,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	establishForTest(t, m)
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	stream := openSSE(t, srv.URL+"/v2/events", "")
	if got := stream.next(t); got.typ != "event_stream_attached" {
		t.Fatalf("first event %+v, want event_stream_attached", got)
	}

	commit := func(changes ...events.Change) {
		t.Helper()
		if err := m.commit(changes...); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	yes, no := true, false
	agent := events.Agent{ID: "a1", Hostname: "h1", IP: "127.0.0.9", State: events.AgentActive}
	web := events.App{ID: "/web", Cmd: "sleep 1000", Instances: 2, Version: at}
	task := func(id string, state events.TaskState, healthy *bool, msg string) events.Change {
		return events.PutTask(events.Task{ID: id, AppID: "/web", AgentID: "a1", Host: "h1",
			Ports: []int{31000}, State: state, Healthy: healthy, Message: msg, StagedAt: at, Version: at})
	}
	deploy := func(id string, step int) events.Deployment {
		return events.Deployment{ID: id, Version: at, AffectedApps: []string{"/web"}, CurrentStep: step, TotalSteps: 2,
			Steps: []events.DeploymentStep{
				{Actions: []events.DeploymentAction{{Action: "StartApplication", App: "/web"}}},
				{Actions: []events.DeploymentAction{{Action: "ScaleApplication", App: "/web"}}},
			}}
	}

	commit(events.PutAgent(agent), events.PutApp(web), events.PutDeployment(deploy("d1", 1)))
	commit(task("t1", events.TaskStaging, nil, ""), task("t2", events.TaskStaging, nil, ""))
	commit(task("t1", events.TaskRunning, &yes, ""), task("t2", events.TaskRunning, nil, ""))
	commit(task("t1", events.TaskRunning, &yes, "")) // nothing Marathon tells
	commit(events.PutDeployment(deploy("d1", 2)), task("t2", events.TaskRunning, &no, ""))

	// A write the store refuses: none of it reaches the stream.
	verdict, entered := make(chan error), make(chan struct{})
	store.mu.Lock()
	store.gate, store.entered = verdict, entered
	store.mu.Unlock()
	failed := make(chan error, 1)
	go func() {
		failed <- m.commit(events.PutApp(events.App{ID: "/ghost", Version: at}), task("t1", events.TaskFailed, nil, "lost"))
	}()
	<-entered
	diskFull := errors.New("no space left on device")
	verdict <- diskFull
	if err := <-failed; !errors.Is(err, diskFull) {
		t.Fatalf("refused write: err %v, want the store's", err)
	}

	commit(events.DeleteDeployment("d1")) // converged: success
	commit(task("t2", events.TaskRunning, &no, "slow"))
	commit(events.DeleteApp("/web"), events.PutDeployment(deploy("d2", 1)))
	commit(events.DeleteDeployment("d2")) // tasks of a removed app left: failed
	commit(events.DeleteTask("t1"), events.DeleteApp("/nothing"))

	ref := events.NewState()
	var want []sseMsg
	for _, e := range store.history() {
		want = append(want, framesAsRead(sseFrames(ref, e))...)
		if err := ref.Apply(e); err != nil {
			t.Fatalf("replay the stored history: %v", err)
		}
	}
	if len(want) < 12 {
		t.Fatalf("the script makes %d Marathon events; it is meant to make more", len(want))
	}
	for i, w := range want {
		got := stream.next(t)
		if got != w {
			t.Fatalf("event %d on the stream:\n got %+v\nwant %+v", i, got, w)
		}
		if strings.Contains(got.data, "/ghost") || strings.Contains(got.data, "lost") {
			t.Fatalf("event %d is of the refused write: %+v", i, got)
		}
	}

	// What a sidecar that resyncs now gets is the stored history: the
	// refused write left the published state neither ahead nor behind.
	snap, err := m.publishedState()
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	got := snap.State
	if got.Seq != ref.Seq || !reflect.DeepEqual(got.Apps, ref.Apps) || !reflect.DeepEqual(got.Tasks, ref.Tasks) ||
		!reflect.DeepEqual(got.Deployments, ref.Deployments) || !reflect.DeepEqual(got.Agents, ref.Agents) {
		t.Errorf("snapshot at seq %d: apps %v tasks %v deployments %v;\nstored history at seq %d: apps %v tasks %v deployments %v",
			got.Seq, got.Apps, got.Tasks, got.Deployments, ref.Seq, ref.Apps, ref.Tasks, ref.Deployments)
	}
	if snap.Digest.IsZero() {
		t.Errorf("snapshot at %d-%d carries no digest", got.Epoch, got.Seq)
	}
}

// Should the published state ever fall out of step with the store (a
// bug), a sidecar asking for a snapshot is told so, and the operator reads
// it in the log, rather than either getting a state that is not the
// stored history.
func TestOutOfStepPublishedStateRefusesSnapshots(t *testing.T) {
	var logged strings.Builder
	var logMu sync.Mutex
	m, err := New(Config{NC: eventstest.Connect(t, eventstest.StartNATS(t)), Store: &MemStore{},
		Log: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logged}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	establishForTest(t, m)
	snap, err := m.publishedState()
	if err != nil {
		t.Fatal(err)
	}
	// Only the committer publishes; nothing is being committed now.
	skipped := events.Event{Epoch: snap.State.Epoch, Seq: snap.State.Seq + 2, Type: events.AppRemoved, ID: "/web", Time: time.Now()}
	m.publishStored([]events.Event{skipped})

	if _, err := m.publishedState(); err == nil || !errors.Is(err, events.ErrOutOfOrder) {
		t.Fatalf("snapshot after an event that did not apply: err %v, want it refused as out of order", err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logged.String(), "level=ERROR") || !strings.Contains(logged.String(), "out of step") {
		t.Errorf("log does not say the published state is out of step:\n%s", logged.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

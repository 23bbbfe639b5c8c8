package master

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// gatedStore is a MemStore whose next AppendAll can be held and failed.
type gatedStore struct {
	MemStore
	mu      sync.Mutex
	gate    chan error // when set, the next AppendAll waits for its verdict
	entered chan struct{}
}

func (g *gatedStore) AppendAll(evs []events.Event) (int, error) {
	g.mu.Lock()
	gate, entered := g.gate, g.entered
	g.gate, g.entered = nil, nil
	g.mu.Unlock()
	if gate != nil {
		close(entered)
		if err := <-gate; err != nil {
			return 0, err
		}
	}
	return g.MemStore.AppendAll(evs)
}

// A store write that fails takes back its changes and every change staged
// behind it while it ran: their callers get the error, the state and its
// seq are as before, nothing of them is published, and the next write is
// stored and served as if nothing had happened.
func TestFailedStoreWriteChangesNothing(t *testing.T) {
	ns := eventstest.StartNATS(t)
	store := &gatedStore{}
	m, err := New(Config{NC: eventstest.Connect(t, ns), Store: store,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	establishForTest(t, m)
	seq := func() (s uint64) { m.View(func(st *events.State) { s = st.Seq }); return }
	has := func(id string) (ok bool) { m.View(func(st *events.State) { _, ok = st.Apps[id] }); return }
	before := seq()

	verdict := make(chan error)
	entered := make(chan struct{})
	store.mu.Lock()
	store.gate, store.entered = verdict, entered
	store.mu.Unlock()

	create := func(id string, out chan<- error) {
		app, err := appForCreate([]byte(`{"id": "`+id+`", "cmd": "sleep 1", "instances": 0}`), testLimits)
		if err != nil {
			t.Error(err)
		}
		_, err = m.CreateApp(app)
		out <- err
	}
	first, second := make(chan error, 1), make(chan error, 1)
	go create("/first", first)
	<-entered // the committer is writing /first
	go create("/second", second)
	waitUntil(t, func() bool { return has("/second") }, "/second staged behind the write in flight")

	diskFull := errors.New("no space left on device")
	verdict <- diskFull
	for name, ch := range map[string]chan error{"first": first, "second": second} {
		select {
		case err := <-ch:
			if !errors.Is(err, diskFull) {
				t.Errorf("%s create: err %v, want the store's error", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s create did not return", name)
		}
	}
	if has("/first") || has("/second") || seq() != before {
		t.Fatalf("after the failed write: /first %v, /second %v, seq %d; want neither, seq %d", has("/first"), has("/second"), seq(), before)
	}
	m.pipe.published.mu.RLock()
	published := m.pipe.published.state.Seq
	m.pipe.published.mu.RUnlock()
	if published != before {
		t.Errorf("published up to seq %d, want %d: nothing of the failed write goes out", published, before)
	}

	third := make(chan error, 1)
	create("/third", third)
	if err := <-third; err != nil {
		t.Fatalf("create after the failure: %v", err)
	}
	stored, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := stored.Apps["/third"]; !ok || len(stored.Apps) != 1 || stored.Seq != seq() {
		t.Errorf("store holds apps %v at seq %d; want only /third at seq %d", stored.Apps, stored.Seq, seq())
	}
}

func waitUntil(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// gatedMaster is a leading master on a NATS server of its own, answering
// agents (subscribed), whose store writes the test holds and releases.
func gatedMaster(t *testing.T, agentTimeout time.Duration) (*Master, *gatedStore, *eventstest.NATS) {
	t.Helper()
	ns := eventstest.StartNATS(t)
	store := &gatedStore{}
	m, err := New(Config{NC: eventstest.Connect(t, ns), Store: store, AgentTimeout: agentTimeout,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	establishForTest(t, m)
	subscribeForTest(t, m)
	return m, store, ns
}

// subscribeForTest has m answer agents and followers until the test ends.
func subscribeForTest(t *testing.T, m *Master) {
	t.Helper()
	subs, err := m.subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	})
}

// A store write and the launches it releases do not wait for the
// master's lock: while a long reconcile pass holds it (a pass of a
// 10,000-instance scale-up at 100,000 tasks holds it for up to a second
// on a busy machine), what was staged before is stored, published and its
// launches go out.
func TestStoreWriteDoesNotWaitForTheLock(t *testing.T) {
	ns := eventstest.StartNATS(t)
	store := &gatedStore{}
	m, err := New(Config{NC: eventstest.Connect(t, ns), Store: store,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	establishForTest(t, m)
	app, err := appForCreate([]byte(`{"id": "/held", "cmd": "sleep 1", "instances": 0}`), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	if err := m.commitLocked(events.PutApp(app)); err != nil {
		m.mu.Unlock()
		t.Fatal(err)
	}
	m.releaseLaunchLocked("node-1", events.LaunchRequest{Task: events.Task{ID: "held.1", AppID: "/held"}})
	d := m.durableLocked()
	// The rest of the pass holds the lock until the write is done.
	stored := make(chan error, 1)
	go func() { stored <- d.wait() }()
	var waitErr error
	select {
	case waitErr = <-stored:
	case <-time.After(5 * time.Second):
		waitErr = errors.New("not stored while the lock was held")
	}
	c, _ := captured.Load(m)
	sends := len(c.(*capturedSends).take())
	m.mu.Unlock()
	if waitErr != nil {
		t.Fatal(waitErr)
	}
	if sends != 1 {
		t.Errorf("%d requests to agents released by the stored batch, want its launch", sends)
	}
	st, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Apps["/held"]; !ok {
		t.Errorf("the store does not hold /held")
	}
}

// A reconcile pass keeps its own changes in one batch, but what writers
// staged before it began is stored while the pass runs: a POST whose
// batch was waiting for the store is not held up by the next pass.
func TestWritesStagedBeforeAPassAreNotHeldByIt(t *testing.T) {
	ns := eventstest.StartNATS(t)
	store := &gatedStore{}
	m, err := New(Config{NC: eventstest.Connect(t, ns), Store: store,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	establishForTest(t, m)
	create := func(id string) <-chan error {
		out := make(chan error, 1)
		app, err := appForCreate([]byte(`{"id": "`+id+`", "cmd": "sleep 1", "instances": 0}`), testLimits)
		if err != nil {
			t.Fatal(err)
		}
		go func() { out <- m.commit(events.PutApp(app)) }()
		return out
	}
	// The store holds /a's write; /b is staged behind it.
	verdict, entered := make(chan error), make(chan struct{})
	store.mu.Lock()
	store.gate, store.entered = verdict, entered
	store.mu.Unlock()
	a := create("/a")
	<-entered
	b := create("/b")
	waitFor(t, 5*time.Second, "/b staged", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		_, ok := m.state.Apps["/b"]
		return ok
	})

	// A pass begins (and holds the lock) before the store is done with /a.
	m.mu.Lock()
	passDone := m.passLocked()
	verdict <- nil
	var errB error
	select {
	case errB = <-b:
	case <-time.After(5 * time.Second):
		errB = errors.New("not stored while the pass ran")
	}
	passDone()
	m.mu.Unlock()
	if err := <-a; err != nil {
		t.Fatalf("/a: %v", err)
	}
	if errB != nil {
		t.Fatalf("/b: %v", errB)
	}
}

package master

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// bulkyTasks are n task updates of app, about 1 KB each.
func bulkyTasks(app string, n int, state events.TaskState) []events.Change {
	out := make([]events.Change, n)
	for i := range out {
		t := eventstest.Task(fmt.Sprintf("%s.%06d", strings.ReplaceAll(strings.Trim(app, "/"), "/", "_"), i), app, "agent-1", state)
		t.Message = strings.Repeat("m", 800)
		out[i] = events.PutTask(t)
	}
	return out
}

// One commit of several MB (more than one request may carry) is stored in
// a handful of Multis, not one per event, and loads back whole. Within it
// a task is created, updated and ended: each Multi sees what the ones
// before it did.
func TestZKStoreAppendAllBatches(t *testing.T) {
	root := zkRoot(t)
	s := newTestZKStore(t, root, "m1")
	st := load(t, s)
	changes := []events.Change{events.PutApp(eventstest.App("/big", 3000))}
	changes = append(changes, bulkyTasks("/big", 3000, events.TaskStaging)...)
	changes = append(changes, bulkyTasks("/big", 2000, events.TaskRunning)...) // sets of records this batch created
	changes = append(changes, bulkyTasks("/big", 10, events.TaskFinished)...)  // and deletes
	evs := stampAll(st, st.Epoch+1, changes)
	n, err := s.AppendAll(evs)
	if err != nil || n != len(evs) {
		t.Fatalf("AppendAll of %d events: stored %d: %v", len(evs), n, err)
	}
	// About 5 MB in Multis of at most 512 KB.
	if s.multis < 8 || s.multis > 16 {
		t.Errorf("%d events in %d Multis, want about 10 (5 MB in 512 KB requests)", len(evs), s.multis)
	}
	got := load(t, newTestZKStore(t, root, "m2"))
	if err := eventstest.Equal(got, st); err != nil {
		t.Fatal(err)
	}
	if len(got.Tasks) != 2990 {
		t.Fatalf("%d tasks loaded, want 2990", len(got.Tasks))
	}
}

// An event whose record no request can carry fails the whole commit
// before anything is written, says why, and leaves the store usable.
func TestZKStoreAppendAllRefusesOversizedEvent(t *testing.T) {
	root := zkRoot(t)
	s := newTestZKStore(t, root, "m1")
	st := load(t, s)
	zkAppend(t, s, st, st.Epoch+1, events.PutApp(eventstest.App("/before", 1)))

	huge := eventstest.App("/huge", 1)
	huge.Env = map[string]string{"BLOB": incompressible(1500 << 10)} // over 1 MB gzipped too
	next := st.Clone()
	evs := stampAll(next, st.Epoch, []events.Change{
		events.PutApp(eventstest.App("/fits", 1)),
		events.PutApp(huge),
		events.PutApp(eventstest.App("/after", 1)),
	})
	n, err := s.AppendAll(evs)
	if n != 0 || err == nil || !strings.Contains(err.Error(), "over the") || !strings.Contains(err.Error(), "/huge") {
		t.Fatalf("AppendAll with a 1 MB record: stored %d, err %v; want 0 and an error naming /huge and the limit", n, err)
	}
	if s.multis != 1 {
		t.Errorf("%d Multis sent, want only the first commit's", s.multis)
	}
	// Nothing of it landed, and the store still takes commits.
	zkAppend(t, s, st, st.Epoch, events.PutApp(eventstest.App("/later", 1)))
	got := load(t, newTestZKStore(t, root, "m2"))
	if err := eventstest.Equal(got, st); err != nil {
		t.Fatal(err)
	}
}

// A commit split into several Multis that a newer leader fences off
// part-way returns how many of its events are stored: exactly those the
// newer leader loaded.
func TestZKStoreAppendAllStopsPartWayWhenFenced(t *testing.T) {
	root := zkRoot(t)
	old := newTestZKStore(t, root, "old")
	st := load(t, old)
	evs := stampAll(st.Clone(), st.Epoch+1, bulkyTasks("/web", 1500, events.TaskRunning))
	var newer *ZKStore
	var taken *events.State
	old.beforeMulti = func(i int) {
		if i == 1 {
			// The Multis are in flight together: take over once the
			// first one is stored.
			newer = newTestZKStore(t, root, "new")
			eventually(t, 10*time.Second, "the first Multi stored", func() bool {
				return counterSeq(t, newer) > st.Seq
			})
			taken = load(t, newer)
		}
	}
	n, err := old.AppendAll(evs)
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("AppendAll across a takeover: %v, want ErrFenced", err)
	}
	if n <= 0 || n >= len(evs) {
		t.Fatalf("AppendAll across a takeover stored %d of %d, want the first Multi's", n, len(evs))
	}
	want := st.Clone()
	for _, e := range evs[:n] {
		if err := want.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := eventstest.Equal(taken, want); err != nil {
		t.Fatalf("the newer leader loaded: %v", err)
	}
	if err := eventstest.Equal(load(t, newTestZKStore(t, root, "reader")), want); err != nil {
		t.Fatalf("after the fenced Multi: %v", err)
	}
}

// A record too large to share a Multi with others, but under what one
// request carries, goes in a Multi of its own.
func TestZKStoreAppendAllLargeRecordAlone(t *testing.T) {
	root := zkRoot(t)
	s := newTestZKStore(t, root, "m1")
	st := load(t, s)
	large := eventstest.App("/large", 1)
	large.Env = map[string]string{"BLOB": incompressible(800 << 10)} // about 600 KB gzipped
	evs := stampAll(st, st.Epoch+1, []events.Change{
		events.PutApp(eventstest.App("/small1", 1)),
		events.PutApp(large),
		events.PutApp(eventstest.App("/small2", 1)),
	})
	if n, err := s.AppendAll(evs); err != nil || n != 3 {
		t.Fatalf("AppendAll: stored %d: %v", n, err)
	}
	if s.multis != 3 {
		t.Errorf("%d Multis, want 3: the 600 KB record alone", s.multis)
	}
	if err := eventstest.Equal(load(t, newTestZKStore(t, root, "m2")), st); err != nil {
		t.Fatal(err)
	}
}

// counterSeq is the seq the counter znode names.
func counterSeq(t *testing.T, s *ZKStore) uint64 {
	t.Helper()
	data, _, err := s.conn.Get(s.counterPath())
	if err != nil {
		t.Fatal(err)
	}
	var c counter
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c.Seq
}

// applied is st with evs applied.
func applied(t *testing.T, st *events.State, evs []events.Event) *events.State {
	t.Helper()
	out := st.Clone()
	for _, e := range evs {
		if err := out.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A Multi ZooKeeper refuses in the middle of a commit stores nothing, and
// neither do the Multis sent after it, though they were in flight already
// and nothing is wrong with them: the counter names the last event of the
// Multis before it, and a new leader loads exactly those and stores the
// rest.
func TestZKStoreAppendAllRefusedMultiStopsTheOnesAfter(t *testing.T) {
	root := zkRoot(t)
	s := newTestZKStore(t, root, "m1")
	st := load(t, s)
	evs := stampAll(st.Clone(), st.Epoch+1, bulkyTasks("/web", 2500, events.TaskRunning))
	// A znode where the third Multi creates one of its records.
	multis, err := s.plan(evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(multis) < 4 {
		t.Fatalf("%d Multis planned, want at least 4", len(multis))
	}
	third := multis[0].events + multis[1].events
	obstacle := s.taskPath(evs[third].Task.ID) + "@" + fmt.Sprint(evs[third].Seq)
	if _, err := s.conn.Create(obstacle, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}

	n, err := s.AppendAll(evs)
	if err == nil || !errors.Is(err, zk.ErrNodeExists) || !strings.Contains(err.Error(), obstacle) {
		t.Fatalf("AppendAll over an existing znode: %v; want the refused create named", err)
	}
	if n != third {
		t.Fatalf("AppendAll stored %d of %d events, want %d (the first two Multis)", n, len(evs), third)
	}
	if got := counterSeq(t, s); got != evs[n-1].Seq {
		t.Fatalf("the counter names seq %d, want %d (the last stored event)", got, evs[n-1].Seq)
	}
	if err := s.conn.Delete(obstacle, -1); err != nil {
		t.Fatal(err)
	}
	next := newTestZKStore(t, root, "next")
	if err := eventstest.Equal(load(t, next), applied(t, st, evs[:n])); err != nil {
		t.Fatalf("after the refused Multi: %v", err)
	}
	// The next leader goes on from there.
	if m, err := next.AppendAll(evs[n:]); err != nil || m != len(evs)-n {
		t.Fatalf("AppendAll of the rest: stored %d of %d: %v", m, len(evs)-n, err)
	}
	if err := eventstest.Equal(load(t, newTestZKStore(t, root, "reader")), applied(t, st, evs)); err != nil {
		t.Fatalf("after the rest: %v", err)
	}
}

// A Multi that reaches ZooKeeper before the one ahead of it stores
// nothing then, and is sent again once that one is stored: the commit is
// stored whole, and the counter names its last event.
func TestZKStoreAppendAllMultisOutOfOrder(t *testing.T) {
	root := zkRoot(t)
	s := newTestZKStore(t, root, "m1")
	st := load(t, s)
	evs := stampAll(st.Clone(), st.Epoch+1, bulkyTasks("/web", 1500, events.TaskRunning))
	base := s.counterVersion
	second := make(chan struct{})
	var once1, once2 bool
	s.sendMulti = func(conn *zk.Conn, ops ...any) ([]zk.MultiResponse, error) {
		switch ops[1].(*zk.SetDataRequest).Version - base {
		case 0:
			if !once1 {
				once1 = true
				<-second // the second Multi goes first
			}
		case 1:
			if !once2 {
				once2 = true
				defer close(second)
			}
		}
		return conn.Multi(ops...)
	}
	n, err := s.AppendAll(evs)
	if err != nil || n != len(evs) {
		t.Fatalf("AppendAll: stored %d of %d: %v", n, len(evs), err)
	}
	if s.resent == 0 {
		t.Fatalf("no Multi was sent again, though the second reached ZooKeeper first")
	}
	if got := counterSeq(t, s); got != evs[len(evs)-1].Seq {
		t.Fatalf("the counter names seq %d, want %d", got, evs[len(evs)-1].Seq)
	}
	if err := eventstest.Equal(load(t, newTestZKStore(t, root, "reader")), applied(t, st, evs)); err != nil {
		t.Fatal(err)
	}
}

// A counter some other writer moved (leader_epoch unchanged) means the
// store no longer knows what is stored: the commit fails, stores nothing,
// and the store refuses until it is loaded again.
func TestZKStoreAppendAllCounterMovedUnderIt(t *testing.T) {
	root := zkRoot(t)
	s := newTestZKStore(t, root, "m1")
	st := load(t, s)
	zkAppend(t, s, st, st.Epoch+1, events.PutApp(eventstest.App("/before", 1)))
	data, _, err := s.conn.Get(s.counterPath())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.conn.Set(s.counterPath(), data, -1); err != nil {
		t.Fatal(err)
	}
	evs := stampAll(st.Clone(), st.Epoch, []events.Change{events.PutApp(eventstest.App("/after", 1))})
	n, err := s.AppendAll(evs)
	if n != 0 || err == nil || !strings.Contains(err.Error(), "counter") {
		t.Fatalf("AppendAll after the counter moved: stored %d: %v; want 0 and an error naming the counter", n, err)
	}
	if _, err := s.AppendAll(evs); err == nil {
		t.Fatal("the store took a commit after it lost track of the counter")
	}
	if err := eventstest.Equal(load(t, newTestZKStore(t, root, "reader")), st); err != nil {
		t.Fatal(err)
	}
}

// incompressible is n characters that gzip cannot shrink much (random
// base64, about 6 bits in 8): records that stay large when stored.
func incompressible(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	raw := make([]byte, n*3/4+3)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	return base64.StdEncoding.EncodeToString(raw)[:n]
}

// A group change of thousands of apps records their original definitions
// in one deployment record, over the ~1 MB ZooKeeper takes in a request as
// JSON: the store gzips a record over 64 KB (as Marathon's --zk_compression
// does), so the change is stored, and a new leader reads it back whole.
func TestZKStoreCompressesLargeRecords(t *testing.T) {
	root := zkRoot(t)
	s := newTestZKStore(t, root, "m1")
	st := load(t, s)
	dep := events.Deployment{ID: "big-group-change", Version: eventstest.T0, Group: "/big"}
	for i := range 3000 {
		a := eventstest.App(fmt.Sprintf("/big/app%04d", i), 2)
		a.Cmd = fmt.Sprintf("exec ./server --name app%04d --listen $PORT0 --log-level info --metrics :9090", i)
		a.Labels = map[string]string{"team": "payments", "tier": "backend", "HAPROXY_GROUP": "external"}
		dep.Originals = append(dep.Originals, a)
		dep.AffectedApps = append(dep.AffectedApps, a.ID)
	}
	asJSON, _ := json.Marshal(dep)
	if len(asJSON) <= maxRequestBytes {
		t.Fatalf("the deployment is %d bytes as JSON: the test wants one over a request's %d", len(asJSON), maxRequestBytes)
	}
	zkAppend(t, s, st, st.Epoch+1, events.PutDeployment(dep), events.PutApp(eventstest.App("/small", 1)))

	stored, _, err := s.conn.Get(s.names[s.recordPath("deployments", dep.ID)])
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) >= len(asJSON)/4 || stored[0] != 0x1f {
		t.Errorf("the deployment's znode holds %d bytes (JSON: %d), want it gzipped", len(stored), len(asJSON))
	}
	small, _, err := s.conn.Get(s.names[s.recordPath("apps", "/small")])
	if err != nil || len(small) == 0 || small[0] != '{' {
		t.Errorf("a small record is stored as %q (err %v), want its JSON", small, err)
	}
	// A new leader reads it back (and again from the cache it writes).
	if err := eventstest.Equal(load(t, newTestZKStore(t, root, "m2")), st); err != nil {
		t.Fatal(err)
	}
	if err := eventstest.Equal(load(t, newTestZKStore(t, root, "m3")), st); err != nil {
		t.Fatal(err)
	}
}

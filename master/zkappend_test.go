package master

import (
	"errors"
	"fmt"
	"strings"
	"testing"

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
	huge.Env = map[string]string{"BLOB": strings.Repeat("x", 1<<20)}
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
			newer = newTestZKStore(t, root, "new")
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
	large.Env = map[string]string{"BLOB": strings.Repeat("x", 700<<10)}
	evs := stampAll(st, st.Epoch+1, []events.Change{
		events.PutApp(eventstest.App("/small1", 1)),
		events.PutApp(large),
		events.PutApp(eventstest.App("/small2", 1)),
	})
	if n, err := s.AppendAll(evs); err != nil || n != 3 {
		t.Fatalf("AppendAll: stored %d: %v", n, err)
	}
	if s.multis != 3 {
		t.Errorf("%d Multis, want 3: the 700 KB record alone", s.multis)
	}
	if err := eventstest.Equal(load(t, newTestZKStore(t, root, "m2")), st); err != nil {
		t.Fatal(err)
	}
}

package master

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// waitCache waits until s's cache writer is done and returns how many
// records its cache holds.
func waitCache(t *testing.T, s *ZKStore) int {
	t.Helper()
	var n int
	eventually(t, 30*time.Second, "record cache written", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		n = s.cacheRecords
		return s.cacheDone == nil
	})
	return n
}

// cacheIDs are the caches under root.
func cacheIDs(t *testing.T, s *ZKStore) []string {
	t.Helper()
	ids, _, err := s.conn.Children(s.cachePath())
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// A takeover reads the records it finds in the record cache under the
// same name from there, and reads one by one only those written since:
// updated, created. Deleted ones are gone. Once enough records are
// written, the leader writes a new cache in the background, of what it
// wrote and the old cache, and removes the old one.
func TestZKStoreLoadUsesRecordCache(t *testing.T) {
	root := zkRoot(t)
	m1 := newTestZKStore(t, root, "m1")
	m1.cacheMin = 1 << 30
	st := load(t, m1)
	changes := append([]events.Change{events.PutApp(eventstest.App("/web", 3000))},
		bulkyTasks("/web", 3000, events.TaskRunning)...)
	zkAppendBatch(t, m1, st, st.Epoch+1, changes)

	// m2 reads all 3,001 records one by one, then caches them.
	m2 := newTestZKStore(t, root, "m2")
	st2 := load(t, m2)
	if m2.lastLoad.fetched != 3001 || m2.lastLoad.cached != 0 {
		t.Fatalf("first load: %+v, want 3001 read one by one", m2.lastLoad)
	}
	if n := waitCache(t, m2); n != 3001 {
		t.Fatalf("cache of %d records, want 3001", n)
	}
	var more []events.Change
	more = append(more, bulkyTasks("/web", 100, events.TaskStaging)...) // updates
	more = append(more, bulkyTasks("/web", 150, events.TaskKilled)[100:]...)
	for i := range 20 {
		more = append(more, events.PutTask(eventstest.Task(fmt.Sprintf("new.%d", i), "/web", "agent-1", events.TaskRunning)))
	}
	zkAppendBatch(t, m2, st2, st2.Epoch+1, more)

	m3 := newTestZKStore(t, root, "m3")
	m3.cacheMin = 1 << 30
	got := load(t, m3)
	if err := eventstest.Equal(got, st2); err != nil {
		t.Fatal(err)
	}
	if m3.lastLoad.cached != 2851 || m3.lastLoad.fetched != 120 {
		t.Fatalf("load after 170 writes: %+v; want 2851 from the cache, 120 read one by one", m3.lastLoad)
	}

	// The next leader writes a cache once its writes are many enough.
	m4 := newTestZKStore(t, root, "m4")
	st4 := load(t, m4)
	before := cacheIDs(t, m4)
	m4.mu.Lock()
	m4.cacheMin = 100
	m4.mu.Unlock()
	zkAppendBatch(t, m4, st4, st4.Epoch+1, bulkyTasks("/web", 2000, events.TaskRunning)[50:]) // over half the cache
	waitCache(t, m4)
	// It caches what it wrote and what its Load read one by one (the 70
	// records m2 wrote after its cache that m4 did not write again) from
	// memory, the rest from the cache before, and reads nothing back.
	m4.mu.Lock()
	written := m4.lastCacheWrite
	m4.mu.Unlock()
	if want := (cacheWriteStats{fromMemory: 2020, fromCache: 1001, fetched: 0}); written != want {
		t.Fatalf("cache written from %+v, want %+v", written, want)
	}
	after := cacheIDs(t, m4)
	if len(after) != 1 || len(before) != 1 || after[0] == before[0] {
		t.Fatalf("caches before the refresh %v, after %v; want one, then another one", before, after)
	}
	m5 := newTestZKStore(t, root, "m5")
	m5.cacheMin = 1 << 30
	if err := eventstest.Equal(load(t, m5), st4); err != nil {
		t.Fatal(err)
	}
	if m5.lastLoad.fetched != 0 {
		t.Fatalf("load after a refresh: %+v, want every record from the cache", m5.lastLoad)
	}
}

// zkAppendBatch stamps changes as one commit and appends it.
func zkAppendBatch(t *testing.T, s *ZKStore, st *events.State, epoch uint64, changes []events.Change) {
	t.Helper()
	evs := stampAll(st, epoch, changes)
	if n, err := s.AppendAll(evs); err != nil || n != len(evs) {
		t.Fatalf("AppendAll of %d: stored %d: %v", len(evs), n, err)
	}
}

// A damaged cache (a chunk that is not cache lines, a chunk missing) only
// makes Load read every record.
func TestZKStoreDamagedRecordCache(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, s *ZKStore, p zkCachePointer)
	}{
		{"garbage chunk", func(t *testing.T, s *ZKStore, p zkCachePointer) {
			if _, err := s.conn.Set(fmt.Sprintf("%s/%s/0", s.cachePath(), p.ID), []byte("garbage"), -1); err != nil {
				t.Fatal(err)
			}
		}},
		{"missing chunk", func(t *testing.T, s *ZKStore, p zkCachePointer) {
			if err := s.conn.Delete(fmt.Sprintf("%s/%s/0", s.cachePath(), p.ID), -1); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := zkRoot(t)
			m1 := newTestZKStore(t, root, "m1")
			m1.cacheMin = 10
			st := load(t, m1)
			zkAppendBatch(t, m1, st, st.Epoch+1, bulkyTasks("/web", 50, events.TaskRunning))
			m2 := newTestZKStore(t, root, "m2")
			m2.cacheMin = 10
			load(t, m2)
			waitCache(t, m2)
			data, _, err := m2.conn.Get(m2.cachePath())
			if err != nil {
				t.Fatal(err)
			}
			var p zkCachePointer
			if err := json.Unmarshal(data, &p); err != nil || p.Records != 50 {
				t.Fatalf("cache pointer %s (%v), want 50 records", data, err)
			}
			tc.damage(t, m2, p)
			m3 := newTestZKStore(t, root, "m3")
			m3.cacheMin = 1 << 30
			if err := eventstest.Equal(load(t, m3), st); err != nil {
				t.Fatal(err)
			}
			if m3.lastLoad.cached != 0 || m3.lastLoad.fetched != 50 {
				t.Fatalf("load with a damaged cache: %+v, want every record read one by one", m3.lastLoad)
			}
		})
	}
}

// Record znodes named as earlier versions named them (no @seq) load; a
// write replaces such a znode with a versioned one, a delete removes it.
func TestZKStoreLoadsEarlierRecordNames(t *testing.T) {
	root := zkRoot(t)
	m1 := newTestZKStore(t, root, "m1")
	st := load(t, m1)
	// What an earlier version wrote: records under their escaped ids.
	app := eventstest.App("/old", 2)
	task1 := eventstest.Task("old.1", "/old", "agent-1", events.TaskRunning)
	task2 := eventstest.Task("old.2", "/old", "agent-1", events.TaskRunning)
	old := events.NewState()
	stampAll(old, 1, []events.Change{events.PutApp(app), events.PutTask(task1), events.PutTask(task2)})
	for path, rec := range map[string]any{
		m1.path("state", "apps", escapeID(app.ID)):                          app,
		m1.path("state", "tasks", taskBucket(task1.ID), escapeID(task1.ID)): task1,
		m1.path("state", "tasks", taskBucket(task2.ID), escapeID(task2.ID)): task2,
		m1.counterPath(): counter{Epoch: 1, Seq: 3},
	} {
		data, _ := json.Marshal(rec)
		if _, err := m1.conn.Set(path, data, -1); err == nil {
			continue
		}
		if _, err := m1.conn.Create(path, data, 0, m1.cfg.ACL); err != nil {
			t.Fatalf("create %s: %v", path, err)
		}
	}
	_ = st
	m2 := newTestZKStore(t, root, "m2")
	got := load(t, m2)
	if err := eventstest.Equal(got, old); err != nil {
		t.Fatalf("earlier names loaded: %v", err)
	}
	app.Instances = 1
	zkAppendBatch(t, m2, got, 2, []events.Change{events.PutApp(app), events.DeleteTask(task2.ID)})
	if err := eventstest.Equal(load(t, newTestZKStore(t, root, "m3")), got); err != nil {
		t.Fatal(err)
	}
	apps, _, _ := m2.conn.Children(m2.path("state", "apps"))
	if len(apps) != 1 || apps[0] != escapeID(app.ID)+"@4" {
		t.Fatalf("app znodes %v, want only %s@4", apps, escapeID(app.ID))
	}
}

// A cache whose writer stopped before it was pointed at (a crash, a lost
// session) is removed when the next one is written.
func TestZKStoreRemovesUnfinishedRecordCache(t *testing.T) {
	root := zkRoot(t)
	m1 := newTestZKStore(t, root, "m1")
	m1.cacheMin = 1 << 30
	st := load(t, m1)
	zkAppendBatch(t, m1, st, st.Epoch+1, bulkyTasks("/web", 50, events.TaskRunning))
	if _, err := m1.conn.Create(m1.cachePath(), nil, 0, m1.cfg.ACL); err != nil {
		t.Fatal(err)
	}
	orphan := m1.cachePath() + "/1-1"
	for _, p := range []string{orphan, orphan + "/0"} {
		if _, err := m1.conn.Create(p, []byte("x"), 0, m1.cfg.ACL); err != nil {
			t.Fatal(err)
		}
	}
	m2 := newTestZKStore(t, root, "m2")
	m2.cacheMin = 10
	if err := eventstest.Equal(load(t, m2), st); err != nil {
		t.Fatal(err)
	}
	if n := waitCache(t, m2); n != 50 {
		t.Fatalf("cache of %d records, want 50", n)
	}
	if ids := cacheIDs(t, m2); len(ids) != 1 || ids[0] == "1-1" {
		t.Fatalf("caches %v, want only the new one", ids)
	}
}

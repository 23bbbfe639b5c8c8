package master

import (
	"io"
	"log/slog"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// followerState is benchState as a store loads it: no agent index.
func followerState() *events.State {
	st := benchState()
	plain := events.NewState()
	plain.Agents, plain.Apps, plain.Tasks = st.Agents, st.Apps, st.Tasks
	plain.Reindex()
	return plain
}

// benchMaster leads over benchState's 100,000 tasks with no committer
// running: what it stages stays in the open batch.
func benchMaster(b *testing.B) *Master {
	b.Helper()
	m, err := New(Config{
		NC: eventstest.Connect(b, eventstest.StartNATS(b)), Store: &MemStore{state: followerState()},
		ID: "master-1", Hostname: "m1.test", Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.establish(); err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkCommitLockedHold100k is how long commitLocked holds the
// master's lock for a batch of 1,000 task status updates at 100,000 tasks:
// every API write and reconcile pass waits that long behind it.
func BenchmarkCommitLockedHold100k(b *testing.B) {
	m := benchMaster(b)
	var changes []events.Change
	m.View(func(s *events.State) {
		ids := make([]string, 0, len(s.Tasks))
		for id := range s.Tasks {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids[:1000] {
			t := s.Tasks[id]
			t.State, t.Message = events.TaskKilling, "scaled down"
			changes = append(changes, events.PutTask(t))
		}
	})
	// The least is reported too: on a shared machine the mean carries
	// whatever preempted the benchmark.
	var hold, least time.Duration
	for i := 0; i < b.N; i++ {
		m.mu.Lock()
		start := time.Now()
		if err := m.commitLocked(changes...); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		hold += d
		if i == 0 || d < least {
			least = d
		}
		b.StopTimer()
		m.pipe.mu.Lock()
		m.revertLocked(m.pipe.open, len(m.pipe.open.evs))
		m.pipe.mu.Unlock()
		m.mu.Unlock()
		b.StartTimer()
	}
	b.ReportMetric(float64(hold.Microseconds())/1e3/float64(b.N), "ms-held/op")
	b.ReportMetric(float64(least.Microseconds())/1e3, "ms-held-least")
}

// BenchmarkSnapshot100k is what making one follower snapshot costs at
// 100,000 tasks (the copy; encoding it follows outside every lock), and
// the longest a writer waited for the master's lock while snapshots were
// being made.
func BenchmarkSnapshot100k(b *testing.B) {
	m := benchMaster(b)
	var stop atomic.Bool
	var maxWait atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			start := time.Now()
			m.mu.Lock()
			w := int64(time.Since(start))
			m.mu.Unlock()
			if w > maxWait.Load() {
				maxWait.Store(w)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	least := time.Hour
	for b.Loop() {
		start := time.Now()
		snap, err := m.publishedState()
		least = min(least, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if len(snap.State.Tasks) != 100000 {
			b.Fatalf("snapshot has %d tasks", len(snap.State.Tasks))
		}
	}
	stop.Store(true)
	wg.Wait()
	b.ReportMetric(float64(least.Microseconds())/1e3, "ms-least")
	b.ReportMetric(float64(maxWait.Load())/1e6, "ms-writer-wait-max")
}

// BenchmarkSecondStateHeap100k is the heap a second copy of the state at
// 100,000 tasks holds, records shared as a clone shares them: the
// published state (no agent index), and for comparison a copy of the
// working state (with it), which each snapshot used to make. Run with
// -benchtime=1x.
func BenchmarkSecondStateHeap100k(b *testing.B) {
	for _, c := range []struct {
		name  string
		state func() *events.State
	}{{"published", followerState}, {"working", benchState}} {
		b.Run(c.name, func(b *testing.B) {
			st := c.state()
			var before, after goruntime.MemStats
			var keep []*events.State
			goruntime.GC()
			goruntime.ReadMemStats(&before)
			for i := 0; i < b.N; i++ {
				keep = append(keep, st.Clone())
			}
			goruntime.GC()
			goruntime.ReadMemStats(&after)
			b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/float64(len(keep))/(1<<20), "MiB/state")
			goruntime.KeepAlive(keep)
			goruntime.KeepAlive(st)
		})
	}
}

// BenchmarkEstablish100k is a term's start at 100,000 tasks once the
// store has loaded them (MemStore's load is a clone): indexing the
// working state and setting up the published state.
func BenchmarkEstablish100k(b *testing.B) {
	m := benchMaster(b)
	least := time.Hour
	for b.Loop() {
		start := time.Now()
		if _, err := m.establish(); err != nil {
			b.Fatal(err)
		}
		least = min(least, time.Since(start))
	}
	b.ReportMetric(float64(least.Microseconds())/1e3, "ms-least")
}

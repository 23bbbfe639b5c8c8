package master

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/zktest"
)

// benchZK is a standalone ZooKeeper with the heap a 100,000-task state
// needs (the test ensemble's 128 MB is not), holding the scale cluster.
var benchZK struct {
	once    sync.Once
	dir     string
	e       *zktest.Ensemble
	root    string
	store   time.Duration // to store the cluster
	multis  int
	records int
	err     error
}

func setupZKScale(b *testing.B) {
	b.Helper()
	zktest.Require(b)
	benchZK.once.Do(func() {
		benchZK.err = func() error {
			var err error
			if benchZK.dir, err = os.MkdirTemp("", "atoll-zkstore-bench"); err != nil {
				return err
			}
			if benchZK.e, err = zktest.LaunchOpts(benchZK.dir, 1, zktest.Options{HeapMB: 1536, FullJIT: true}); err != nil {
				return err
			}
			conn, err := benchConnect(benchZK.e.Servers)
			if err != nil {
				return err
			}
			defer conn.Close()
			benchZK.root = "/bench/scale"
			s := NewZKStore(conn, ZKStoreConfig{Root: benchZK.root, Owner: "gen", Log: quietLog})
			st, err := s.Load()
			if err != nil {
				return err
			}
			evs := stampAll(st, 1, scaleChanges(scaleTasks, scaleApps, scaleAgents))
			start := time.Now()
			if err := appendBatches(s, evs); err != nil {
				return err
			}
			benchZK.store, benchZK.multis = time.Since(start), s.multis
			benchZK.records = len(st.Tasks) + len(st.Apps) + len(st.Agents)
			s.Close() // stops its cache writer
			// A takeover that finds the cache behind caches again.
			conn2, err := benchConnect(benchZK.e.Servers)
			if err != nil {
				return err
			}
			defer conn2.Close()
			s2 := NewZKStore(conn2, ZKStoreConfig{Root: benchZK.root, Owner: "gen2", Log: quietLog})
			if _, err := s2.Load(); err != nil {
				return err
			}
			s2.stopCacheWhenDone()
			return nil
		}()
	})
	if benchZK.err != nil {
		b.Fatal(benchZK.err)
	}
}

// benchConnect opens a session to servers.
func benchConnect(servers []string) (*zk.Conn, error) {
	conn, evs, err := zk.Connect(servers, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		return nil, err
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-evs:
			if ev.State == zk.StateHasSession {
				return conn, nil
			}
		case <-deadline:
			conn.Close()
			return nil, zk.ErrNoServer
		}
	}
}

// BenchmarkZKStoreLoad100k is a takeover on ZooKeeper: a new leader's
// Load of the scale cluster (fence, then read every record, indexes
// built) on a session of its own: with the record cache, and reading
// every record one by one (as without a cache, or from the record names
// of earlier versions).
func BenchmarkZKStoreLoad100k(b *testing.B) {
	setupZKScale(b)
	for _, tc := range []struct {
		name   string
		ignore bool
	}{{"cached", false}, {"one-by-one", true}} {
		b.Run(tc.name, func(b *testing.B) {
			var st *events.State
			var stats loadStats
			for b.Loop() {
				conn, err := benchConnect(benchZK.e.Servers)
				if err != nil {
					b.Fatal(err)
				}
				s := NewZKStore(conn, ZKStoreConfig{Root: benchZK.root, Owner: "bench", Log: quietLog})
				s.cacheMin, s.ignoreCache = 1<<30, tc.ignore
				if st, err = s.Load(); err != nil {
					b.Fatal(err)
				}
				stats = s.lastLoad
				conn.Close()
			}
			if len(st.Tasks) != scaleTasks {
				b.Fatalf("loaded %d tasks, want %d", len(st.Tasks), scaleTasks)
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/load")
			b.ReportMetric(float64(stats.cached), "records-from-cache")
			b.ReportMetric(float64(stats.fetched), "records-read-one-by-one")
		})
	}
}

// BenchmarkZKStoreAppendAll100k is what storing the scale cluster cost:
// 111,000 events in AppendAll batches of 1,000, as Multis of up to 512 KB.
func BenchmarkZKStoreAppendAll100k(b *testing.B) {
	setupZKScale(b)
	for b.Loop() {
		// The figure is the setup's.
	}
	b.ReportMetric(float64(benchZK.records)/benchZK.store.Seconds(), "events/s")
	b.ReportMetric(float64(benchZK.multis), "multis")
}

// BenchmarkZKStoreTaskUpdates100k is the committer's steady work in
// ZooKeeper mode at 100,000 tasks: AppendAll of a batch of status
// updates of stored tasks (as agents report them), and a batch of new
// tasks staged then reported running in the next batch (a scale-up). It
// reports the wall time per batch and the CPU ZooKeeper's JVM spent on
// it (zk-cpu-ms/batch): both share the machine's cores with the master.
func BenchmarkZKStoreTaskUpdates100k(b *testing.B) {
	setupZKScale(b)
	conn, err := benchConnect(benchZK.e.Servers)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	s := NewZKStore(conn, ZKStoreConfig{Root: benchZK.root, Owner: "updates", Log: quietLog})
	s.cacheMin = 1 << 30 // the benchmark measures AppendAll alone
	st, err := s.Load()
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 0, len(st.Tasks))
	for id := range st.Tasks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	next, fresh := 0, 0
	for _, batch := range []int{100, 1000} {
		b.Run(fmt.Sprintf("running-batch-%d", batch), func(b *testing.B) {
			zk0 := childJavaCPU()
			for b.Loop() {
				changes := make([]events.Change, batch)
				for i := range changes {
					t := st.Tasks[ids[next%len(ids)]]
					next++
					t.Message = fmt.Sprintf("report %d", next)
					changes[i] = events.PutTask(t)
				}
				if n, err := s.AppendAll(stampAll(st, st.Epoch+1, changes)); err != nil || n != batch {
					b.Fatalf("stored %d of %d: %v", n, batch, err)
				}
			}
			reportBatch(b, batch, childJavaCPU()-zk0)
		})
		b.Run(fmt.Sprintf("staged-then-running-batch-%d", batch), func(b *testing.B) {
			zk0 := childJavaCPU()
			for b.Loop() {
				staged := make([]events.Change, batch)
				running := make([]events.Change, batch)
				for i := range staged {
					fresh++
					t := eventstest.Task(fmt.Sprintf("scaleup_app.%08x-1c2d-11ef-9a3b-0242ac110002", fresh), "/scale/group00/app00000",
						fmt.Sprintf("agent-%04d", fresh%scaleAgents), events.TaskStaging)
					staged[i] = events.PutTask(t)
					t.State = events.TaskRunning
					running[i] = events.PutTask(t)
				}
				for _, changes := range [][]events.Change{staged, running} {
					if n, err := s.AppendAll(stampAll(st, st.Epoch+1, changes)); err != nil || n != batch {
						b.Fatalf("stored %d of %d: %v", n, batch, err)
					}
				}
			}
			reportBatch(b, 2*batch, childJavaCPU()-zk0)
		})
	}
}

// reportBatch reports a benchmark whose iterations stored events events
// each, as what one batch of 100 costs.
func reportBatch(b *testing.B, events int, zkCPU time.Duration) {
	per := float64(b.N * events)
	b.ReportMetric(per/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/per, "µs/event")
	b.ReportMetric(float64(zkCPU.Microseconds())/per, "zk-cpu-µs/event")
}

// childJavaCPU is the CPU time the JVMs this process started have used
// (user + system, from /proc): the benchmark's ZooKeeper.
func childJavaCPU() time.Duration {
	entries, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range entries {
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15)
		s := string(data)
		end := strings.LastIndexByte(s, ')')
		if end < 0 || !strings.Contains(s[:end], "(java") {
			continue
		}
		f := strings.Fields(s[end+2:])
		if len(f) < 13 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + k
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// BenchmarkZKStoreGrowth100k is the committer's store writes while the
// cluster grows from 100,000 tasks by 30,000 more (each staged, then
// running, in batches of 500 as reconcile passes and status reports
// make them), with the record cache refreshed as a leader refreshes it:
// the latency of each AppendAll, as POST /v2/apps waits on it.
func BenchmarkZKStoreGrowth100k(b *testing.B) {
	setupZKScale(b)
	const grow, batch = 30000, 500
	for b.Loop() {
		conn, err := benchConnect(benchZK.e.Servers)
		if err != nil {
			b.Fatal(err)
		}
		s := NewZKStore(conn, ZKStoreConfig{Root: benchZK.root, Owner: "growth", Log: quietLog})
		st, err := s.Load()
		if err != nil {
			b.Fatal(err)
		}
		zk0, start := childJavaCPU(), time.Now()
		var lat []time.Duration
		for i := 0; i < grow; i += batch {
			staged := make([]events.Change, batch)
			running := make([]events.Change, batch)
			for j := range staged {
				t := eventstest.Task(fmt.Sprintf("grown_app.%08x-%d-1c2d-11ef-9a3b-0242ac110002", i+j, st.Seq), "/scale/group00/app00000",
					fmt.Sprintf("agent-%04d", (i+j)%scaleAgents), events.TaskStaging)
				staged[j] = events.PutTask(t)
				t.State = events.TaskRunning
				running[j] = events.PutTask(t)
			}
			for _, changes := range [][]events.Change{staged, running} {
				evs := stampAll(st, st.Epoch+1, changes)
				t0 := time.Now()
				if n, err := s.AppendAll(evs); err != nil || n != len(evs) {
					b.Fatalf("stored %d of %d: %v", n, len(evs), err)
				}
				lat = append(lat, time.Since(t0))
			}
		}
		took := time.Since(start)
		s.stopCacheWhenDone()
		zkCPU := childJavaCPU() - zk0
		conn.Close()
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
		b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
		b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
		b.ReportMetric(2*grow/took.Seconds(), "events/s")
		b.ReportMetric(zkCPU.Seconds(), "zk-cpu-s")
	}
}

package master

import (
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/atollhq/atoll/events"
)

// zkReadsInFlight bounds the Gets in flight during Load: go-zookeeper
// pipelines concurrent requests on the one connection, and the server
// answers a deep pipeline much faster than a shallow one (100,000 records:
// about 15 s with 32 in flight, a third of that with 1,024).
const zkReadsInFlight = 1024

// zkBackgroundReadsInFlight bounds the Gets of the cache writer, which
// shares the session with the leader's writes: ZooKeeper answers a
// session's requests in order, so a Multi sent behind 1,024 Gets waited
// for all of them (a batch of 100 task updates at 100,000 tasks: p99
// 40 ms alone, 242 ms while a cache was written from 100,000 Gets).
const zkBackgroundReadsInFlight = 16

// zkBackgroundChunksInFlight bounds the cache writer's reads of the cache
// before it (chunks of up to 512 KB), for the same reason.
const zkBackgroundChunksInFlight = 2

// zkRecord is one record znode.
type zkRecord struct {
	base string // <dir>/<escaped id>: the record, whatever its version
	path string // base@<seq>: the znode
	kind string // app, agent, deployment, task
	// seq is the event that wrote it; 0 for a znode named as earlier
	// versions named them (no @seq), whose version is unknown.
	seq  uint64
	data []byte
	// cached: Load took data from the record cache.
	cached bool
}

// loadStats is what a Load read.
type loadStats struct {
	records int
	cached  int // served by the record cache
	fetched int // read one by one
	fetch   time.Duration
	decode  time.Duration
}

// read loads every record below <root>/state and returns the state and
// the record znodes. s.mu must be held.
func (s *ZKStore) read() (*events.State, []zkRecord, error) {
	start := time.Now()
	st := events.NewState()
	data, cstat, err := s.conn.Get(s.counterPath())
	if err != nil {
		return nil, nil, fmt.Errorf("zk store: read counter: %w", err)
	}
	s.counterVersion = cstat.Version
	var c counter
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, nil, fmt.Errorf("zk store: decode counter %q: %w", data, err)
	}
	st.Epoch, st.Seq = c.Epoch, c.Seq
	if data, _, err = s.conn.Get(s.leaderPath()); err != nil {
		return nil, nil, fmt.Errorf("zk store: read leader: %w", err)
	}
	if len(data) > 0 {
		var l events.Leader
		if err := json.Unmarshal(data, &l); err != nil {
			return nil, nil, fmt.Errorf("zk store: decode leader: %w", err)
		}
		st.Leader = &l
	}
	recs, stats, err := s.readRecords(s.conn)
	if err != nil {
		return nil, nil, err
	}
	stats.fetch = time.Since(start)
	fetched := time.Now()
	if err := decodeZKRecords(st, recs); err != nil {
		return nil, nil, err
	}
	st.Reindex()
	stats.decode = time.Since(fetched)
	s.lastLoad = stats
	s.cfg.Log.Info("zk store: state read", "records", stats.records, "from_cache", stats.cached,
		"read_one_by_one", stats.fetched, "seq", st.Seq,
		"fetch", stats.fetch.Round(time.Millisecond), "decode", stats.decode.Round(time.Millisecond))
	return st, recs, nil
}

// recordDirs lists the directories whose children are records, and their
// kind.
func (s *ZKStore) recordDirList() (paths, kinds []string) {
	for _, d := range recordDirs {
		paths = append(paths, s.path("state", d))
		kinds = append(kinds, strings.TrimSuffix(d, "s"))
	}
	for b := range taskBuckets {
		paths = append(paths, s.path("state", "tasks", fmt.Sprintf("%02x", b)))
		kinds = append(kinds, "task")
	}
	return paths, kinds
}

// readRecords lists every record znode and returns their bytes: from the
// record cache where it holds the znode (same name, same version),
// otherwise read one by one, zkReadsInFlight at a time on the one
// connection.
func (s *ZKStore) readRecords(conn *zk.Conn) ([]zkRecord, loadStats, error) {
	dirs, kinds := s.recordDirList()
	children := make([][]string, len(dirs))
	if err := parallelN(len(dirs), zkReadsInFlight, func(i int) error {
		names, _, err := conn.Children(dirs[i])
		if err != nil {
			return fmt.Errorf("zk store: list %s: %w", dirs[i], err)
		}
		children[i] = names
		return nil
	}); err != nil {
		return nil, loadStats{}, err
	}
	var recs []zkRecord
	for i, names := range children {
		byBase := make(map[string]int, len(names)) // index in recs
		for _, n := range names {
			base, seqText, versioned := strings.Cut(n, "@")
			r := zkRecord{base: dirs[i] + "/" + base, path: dirs[i] + "/" + n, kind: kinds[i]}
			if versioned {
				seq, err := strconv.ParseUint(seqText, 10, 64)
				if err != nil {
					return nil, loadStats{}, fmt.Errorf("zk store: %s: not a record's name (<id>@<seq>)", r.path)
				}
				r.seq = seq
			}
			if j, dup := byBase[r.base]; dup {
				// Only a master of an earlier version, leading again,
				// writes a record beside its versioned znode.
				s.cfg.Log.Warn("zk store: two znodes of one record: keeping the newer", "record", r.base,
					"znodes", []string{recs[j].path, r.path})
				if r.seq > recs[j].seq {
					recs[j] = r
				}
				continue
			}
			byBase[r.base] = len(recs)
			recs = append(recs, r)
		}
	}
	var cache map[string][]byte
	if !s.ignoreCache {
		cache = s.readCache(conn, zkReadsInFlight)
	}
	stats := loadStats{records: len(recs)}
	var missing []int
	for i := range recs {
		if data, ok := cache[recs[i].path]; ok && recs[i].seq > 0 {
			recs[i].data, recs[i].cached = data, true
			stats.cached++
		} else {
			missing = append(missing, i)
		}
	}
	stats.fetched = len(missing)
	if err := parallelN(len(missing), zkReadsInFlight, func(j int) error {
		r := &recs[missing[j]]
		start := time.Now()
		stored, _, err := conn.Get(r.path)
		if err != nil {
			return fmt.Errorf("zk store: read %s: %w", r.path, err)
		}
		s.noteAlive(conn, start)
		data, err := zkDecodeRecord(stored)
		if err != nil {
			return fmt.Errorf("zk store: read %s: %w", r.path, err)
		}
		r.data = data
		return nil
	}); err != nil {
		return nil, loadStats{}, err
	}
	return recs, stats, nil
}

// decodeZKRecords decodes recs into st, on every core.
func decodeZKRecords(st *events.State, recs []zkRecord) error {
	count := map[string]int{}
	slot := make([]int, len(recs))
	for i, r := range recs {
		slot[i] = count[r.kind]
		count[r.kind]++
	}
	var (
		apps   = make([]events.App, count["app"])
		agents = make([]events.Agent, count["agent"])
		deps   = make([]events.Deployment, count["deployment"])
		vers   = make([]events.App, count["appversion"])
		fails  = make([]events.TaskFailure, count["failure"])
		tasks  = make([]events.Task, count["task"])
		groups = make([]events.Group, count["group"])
		gvers  = make([]events.GroupVersion, count["groupversion"])
		kept   = make([]events.App, count["keptapp"])
	)
	chunks := (len(recs) + decodeChunk - 1) / decodeChunk
	if err := parallel(chunks, func(c int) error {
		for i := c * decodeChunk; i < min((c+1)*decodeChunk, len(recs)); i++ {
			r := recs[i]
			var err error
			switch r.kind {
			case "app":
				err = json.Unmarshal(r.data, &apps[slot[i]])
			case "agent":
				err = json.Unmarshal(r.data, &agents[slot[i]])
			case "deployment":
				err = json.Unmarshal(r.data, &deps[slot[i]])
			case "appversion":
				err = json.Unmarshal(r.data, &vers[slot[i]])
			case "failure":
				err = json.Unmarshal(r.data, &fails[slot[i]])
			case "task":
				err = json.Unmarshal(r.data, &tasks[slot[i]])
			case "group":
				err = json.Unmarshal(r.data, &groups[slot[i]])
			case "groupversion":
				err = json.Unmarshal(r.data, &gvers[slot[i]])
			case "keptapp":
				err = json.Unmarshal(r.data, &kept[slot[i]])
			}
			if err != nil {
				return fmt.Errorf("zk store: %s: decode %s: %w", r.path, r.kind, err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	st.Apps = make(map[string]events.App, len(apps))
	for _, a := range apps {
		st.Apps[a.ID] = a
	}
	for _, a := range agents {
		st.Agents[a.ID] = a
	}
	for _, d := range deps {
		st.Deployments[d.ID] = d
	}
	for _, g := range groups {
		st.Groups[g.ID] = g
	}
	st.AppVersions = make(map[string][]events.App)
	for _, v := range vers {
		st.AppVersions[v.ID] = events.WithVersion(st.AppVersions[v.ID], v)
	}
	st.SetGroupVersions(gvers, kept)
	st.AppFailures = make(map[string]events.TaskFailure, len(fails))
	for _, f := range fails {
		st.AppFailures[f.Task.AppID] = f
	}
	st.Tasks = make(map[string]events.Task, len(tasks))
	for _, t := range tasks {
		st.Tasks[t.ID] = t
	}
	return nil
}

// parallel runs fn(0..n-1) on one goroutine per core and returns the
// first error; all have returned when it does.
func parallel(n int, fn func(i int) error) error {
	return parallelN(n, goruntime.GOMAXPROCS(0), fn)
}

// parallelN runs fn(0..n-1) on up to workers goroutines and returns the
// first error; all have returned when it does.
func parallelN(n, workers int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		next  int
		first error
	)
	for range min(n, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

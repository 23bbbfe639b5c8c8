package master

import (
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/atollhq/atoll/events"
)

// zkReadsInFlight bounds the Gets in flight during Load: go-zookeeper
// pipelines concurrent requests on the one connection, and the server
// answers a deep pipeline much faster than a shallow one (100,000 records:
// about 15 s with 32 in flight, a third of that with 1,024).
const zkReadsInFlight = 1024

// read loads every record below <root>/state and returns the state and
// the set of record znodes. Reads run zkReadsInFlight at a time on the
// one connection. s.mu must be held.
func (s *ZKStore) read() (*events.State, map[string]bool, error) {
	start := time.Now()
	st := events.NewState()
	data, _, err := s.conn.Get(s.counterPath())
	if err != nil {
		return nil, nil, fmt.Errorf("zk store: read counter: %w", err)
	}
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

	// Every directory whose children are records, and which kind.
	type dir struct {
		path string
		kind string
	}
	dirs := []dir{
		{s.path("state", "apps"), "app"},
		{s.path("state", "agents"), "agent"},
		{s.path("state", "deployments"), "deployment"},
	}
	for b := range taskBuckets {
		dirs = append(dirs, dir{s.path("state", "tasks", fmt.Sprintf("%02x", b)), "task"})
	}

	// First every directory's children, then every record.
	children := make([][]string, len(dirs))
	if err := parallelN(len(dirs), zkReadsInFlight, func(i int) error {
		names, _, err := s.conn.Children(dirs[i].path)
		if err != nil {
			return fmt.Errorf("zk store: list %s: %w", dirs[i].path, err)
		}
		children[i] = names
		return nil
	}); err != nil {
		return nil, nil, err
	}
	// Each record is decoded by the goroutine that fetched it, while the
	// other fetches are in flight, into its slot of its kind's slice.
	type rec struct {
		path string
		kind string
		slot int
	}
	var recs []rec
	count := map[string]int{}
	for i, names := range children {
		for _, n := range names {
			k := dirs[i].kind
			recs = append(recs, rec{path: dirs[i].path + "/" + n, kind: k, slot: count[k]})
			count[k]++
		}
	}
	var (
		apps   = make([]events.App, count["app"])
		agents = make([]events.Agent, count["agent"])
		deps   = make([]events.Deployment, count["deployment"])
		tasks  = make([]events.Task, count["task"])
	)
	if err := parallelN(len(recs), zkReadsInFlight, func(i int) error {
		r := recs[i]
		data, _, err := s.conn.Get(r.path)
		if err != nil {
			return fmt.Errorf("zk store: read %s: %w", r.path, err)
		}
		switch r.kind {
		case "app":
			err = json.Unmarshal(data, &apps[r.slot])
		case "agent":
			err = json.Unmarshal(data, &agents[r.slot])
		case "deployment":
			err = json.Unmarshal(data, &deps[r.slot])
		case "task":
			err = json.Unmarshal(data, &tasks[r.slot])
		}
		if err != nil {
			return fmt.Errorf("zk store: %s: decode %s: %w", r.path, r.kind, err)
		}
		return nil
	}); err != nil {
		return nil, nil, err
	}
	fetched := time.Now()
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
	st.Tasks = make(map[string]events.Task, len(tasks))
	for _, t := range tasks {
		st.Tasks[t.ID] = t
	}
	exists := make(map[string]bool, len(recs))
	for _, r := range recs {
		exists[r.path] = true
	}
	st.Reindex()
	s.cfg.Log.Info("zk store: state read", "records", len(recs), "seq", st.Seq,
		"fetch", fetched.Sub(start).Round(time.Millisecond), "index", time.Since(fetched).Round(time.Millisecond))
	return st, exists, nil
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

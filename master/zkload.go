package master

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/atollhq/atoll/events"
)

// read loads every record below <root>/state and returns the state and
// the set of record znodes. Reads run loadWorkers at a time on the one
// connection, which pipelines them: a large state costs a few round trips
// per thousand records, not one each. s.mu must be held.
func (s *ZKStore) read() (*events.State, map[string]bool, error) {
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

	// Every directory whose children are records, and how to keep one.
	type dir struct {
		path string
		keep func(data []byte) error
	}
	var mu sync.Mutex // guards st's maps while workers decode
	keepInto := func(kind string, keep func(data []byte) error) func([]byte) error {
		return func(data []byte) error {
			mu.Lock()
			defer mu.Unlock()
			if err := keep(data); err != nil {
				return fmt.Errorf("decode %s: %w", kind, err)
			}
			return nil
		}
	}
	dirs := []dir{
		{s.path("state", "apps"), keepInto("app", func(d []byte) error {
			var a events.App
			err := json.Unmarshal(d, &a)
			st.Apps[a.ID] = a
			return err
		})},
		{s.path("state", "agents"), keepInto("agent", func(d []byte) error {
			var a events.Agent
			err := json.Unmarshal(d, &a)
			st.Agents[a.ID] = a
			return err
		})},
		{s.path("state", "deployments"), keepInto("deployment", func(d []byte) error {
			var x events.Deployment
			err := json.Unmarshal(d, &x)
			st.Deployments[x.ID] = x
			return err
		})},
	}
	keepTask := keepInto("task", func(d []byte) error {
		var t events.Task
		err := json.Unmarshal(d, &t)
		st.Tasks[t.ID] = t
		return err
	})
	for b := range taskBuckets {
		dirs = append(dirs, dir{s.path("state", "tasks", fmt.Sprintf("%02x", b)), keepTask})
	}

	// First every directory's children, then every record.
	children := make([][]string, len(dirs))
	if err := parallel(len(dirs), func(i int) error {
		names, _, err := s.conn.Children(dirs[i].path)
		if err != nil {
			return fmt.Errorf("zk store: list %s: %w", dirs[i].path, err)
		}
		children[i] = names
		return nil
	}); err != nil {
		return nil, nil, err
	}
	type rec struct {
		path string
		keep func([]byte) error
	}
	var recs []rec
	for i, names := range children {
		for _, n := range names {
			recs = append(recs, rec{dirs[i].path + "/" + n, dirs[i].keep})
		}
	}
	if err := parallel(len(recs), func(i int) error {
		data, _, err := s.conn.Get(recs[i].path)
		if err != nil {
			return fmt.Errorf("zk store: read %s: %w", recs[i].path, err)
		}
		if err := recs[i].keep(data); err != nil {
			return fmt.Errorf("zk store: %s: %w", recs[i].path, err)
		}
		return nil
	}); err != nil {
		return nil, nil, err
	}
	exists := make(map[string]bool, len(recs))
	for _, r := range recs {
		exists[r.path] = true
	}
	st.Reindex()
	return st, exists, nil
}

// parallel runs fn(0..n-1) on up to loadWorkers goroutines and returns
// the first error; all have returned when it does.
func parallel(n int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		next  int
		first error
	)
	for range min(n, loadWorkers) {
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

package master

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// The record cache makes a takeover read a few hundred large znodes
// instead of one per record (100,000 tasks: ZooKeeper answers some 10,000
// reads a second).
//
// A record's znode is named <escaped id>@<seq>, seq being the event that
// wrote it; a put replaces the znode with one of the new name. So a name
// stands for one version of one record, and the cache, a copy of record
// znodes by name, is right about every name it holds whenever it was
// written: Load lists the record znodes (cheap: 259 listings), takes from
// the cache those it holds under the same name and reads only the others.
// Nothing needs to be consistent with anything, and a cache that cannot
// be read is only slower.
//
//	<root>/state/cache              data: {"id":..,"chunks":N,"records":R}
//	<root>/state/cache/<id>/<i>     chunk i: lines "<path below state>\t<record JSON>"
//
// The leader writes a new cache on a goroutine of the store when Load had
// to read many records one by one, and again once it has written as many
// records as half the cache holds (so a cluster that grows writes its
// records into caches about twice over, and a takeover reads at most
// about a third of the records one by one): fenced Multis of one chunk
// each, then the pointer, then the old chunks go. After a Load it caches
// what Load read; later, the records the leader wrote (or its Load read
// one by one) since the writer last started, and the others from the
// cache before. It reads back one by one only records it holds nowhere
// (the cache before could not be read, say), few at a time: its requests
// queue with the leader's Multis on the one session.
//
// Record znodes named as earlier versions named them (no @seq) are never
// cached: a master of an earlier version, leading again during an
// upgrade, sets them in place. They are read one by one until they are
// next written.

const (
	// cacheMinRecords: a cache is worth writing once this many records
	// would otherwise be read one by one.
	cacheMinRecords = 2000
)

// cacheWriteStats is where the records of a cache written came from.
type cacheWriteStats struct {
	fromMemory int // written by this store, or read one by one by its Load
	fromCache  int // from the cache before
	fetched    int // read one by one (those gone meanwhile are not cached)
}

// zkCachePointer is the data of <root>/state/cache.
type zkCachePointer struct {
	ID      string `json:"id"`
	Chunks  int    `json:"chunks"`
	Records int    `json:"records"`
}

func (s *ZKStore) cachePath() string { return s.path("state", "cache") }

// readCache returns the cached record znodes by path, or nil when there is
// no cache or it cannot be read (then Load reads every record); it reads
// up to inFlight chunks at once.
func (s *ZKStore) readCache(conn *zk.Conn, inFlight int) map[string][]byte {
	data, _, err := conn.Get(s.cachePath())
	if errors.Is(err, zk.ErrNoNode) || (err == nil && len(data) == 0) {
		return nil
	}
	var p zkCachePointer
	if err == nil {
		err = json.Unmarshal(data, &p)
	}
	if err != nil {
		s.cfg.Log.Warn("zk store: record cache unreadable: reading every record", "err", err)
		return nil
	}
	chunks := make([][]byte, p.Chunks)
	if err := parallelN(p.Chunks, inFlight, func(i int) error {
		data, _, err := conn.Get(fmt.Sprintf("%s/%s/%d", s.cachePath(), p.ID, i))
		chunks[i] = data
		return err
	}); err != nil {
		s.cfg.Log.Warn("zk store: record cache unreadable: reading every record", "cache", p.ID, "err", err)
		return nil
	}
	out := make(map[string][]byte, p.Records)
	prefix := s.path("state") + "/"
	for _, c := range chunks {
		for len(c) > 0 {
			line, rest, _ := bytes.Cut(c, []byte("\n"))
			c = rest
			path, rec, ok := bytes.Cut(line, []byte("\t"))
			if !ok {
				s.cfg.Log.Warn("zk store: record cache damaged: reading every record", "cache", p.ID)
				return nil
			}
			out[prefix+string(path)] = rec
		}
	}
	return out
}

// maybeRefreshCache starts the cache writer when a new cache is due:
// with recs from a Load, or with the records as this store knows them
// (cacheSourcesLocked). s.mu must be held.
func (s *ZKStore) maybeRefreshCache(recs []zkRecord) {
	if s.cacheDone != nil || s.conn == nil || !s.loaded || s.broken != nil {
		return
	}
	if s.sinceCache < max(s.cacheMin, s.cacheRecords/2) {
		return
	}
	if recs == nil {
		recs = s.cacheSourcesLocked()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.cacheStop, s.cacheDone = cancel, done
	conn, fence, written := s.conn, s.fence, s.sinceCache
	go func() {
		defer close(done)
		n, stats, err := s.writeCache(ctx, conn, fence, recs)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.cacheDone != done {
			return // stopped: a new session or Load owns the fields
		}
		s.lastCacheWrite = stats
		s.cacheStop, s.cacheDone = nil, nil
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.Log.Warn("zk store: write record cache", "err", err)
			}
			// Try again once as many records again are written.
			s.sinceCache = max(0, s.sinceCache-written)
			return
		}
		s.sinceCache = max(0, s.sinceCache-written)
		s.cacheRecords = n
	}()
}

// stopCache stops the cache writer without waiting for it: a ZooKeeper
// request it has in flight returns when its session does (a partitioned
// leader must not wait for that to step down), and from then on its
// writes fail anyway, fenced or on a closed session. s.mu must not be
// held.
func (s *ZKStore) stopCache() {
	s.mu.Lock()
	stop := s.cacheStop
	s.cacheStop, s.cacheDone = nil, nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// cacheSourcesLocked is every record znode as this store knows it, with
// the bytes of those it wrote since the cache writer last started (the
// writer takes the others from the cache before, or reads them). s.mu
// must be held.
func (s *ZKStore) cacheSourcesLocked() []zkRecord {
	recs := make([]zkRecord, 0, len(s.names))
	for base, path := range s.names {
		r := zkRecord{base: base, path: path}
		if _, seq, ok := strings.Cut(path[len(base):], "@"); ok {
			r.seq, _ = strconv.ParseUint(seq, 10, 64)
		}
		if w, ok := s.written[base]; ok && w.path == path {
			r.data = w.data
		}
		recs = append(recs, r)
	}
	s.written = map[string]zkRecord{}
	return recs
}

// fillCacheSources gives the records of recs that have no bytes yet
// theirs: from the current cache where it holds the same znode, else
// read one by one (a znode gone meanwhile stays without: not cached).
// Its reads share the leader's session, so few are in flight at once.
func (s *ZKStore) fillCacheSources(conn *zk.Conn, recs []zkRecord) (cached, fetched int, err error) {
	var missing []int
	for i, r := range recs {
		if r.data == nil && r.seq > 0 {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return 0, 0, nil
	}
	old := s.readCache(conn, zkBackgroundChunksInFlight)
	rest := missing[:0]
	for _, i := range missing {
		if data, ok := old[recs[i].path]; ok {
			recs[i].data = data
			cached++
		} else {
			rest = append(rest, i)
		}
	}
	var read atomic.Int64
	err = parallelN(len(rest), zkBackgroundReadsInFlight, func(j int) error {
		r := &recs[rest[j]]
		stored, _, err := conn.Get(r.path)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", r.path, err)
		}
		data, err := zkDecodeRecord(stored)
		if err != nil {
			return fmt.Errorf("read %s: %w", r.path, err)
		}
		r.data = data
		read.Add(1)
		return nil
	})
	return cached, int(read.Load()), err
}

// writeCache writes a cache of recs and removes the older ones. Every
// write is fenced. It returns the records cached.
func (s *ZKStore) writeCache(ctx context.Context, conn *zk.Conn, fence int32, recs []zkRecord) (int, cacheWriteStats, error) {
	start := time.Now()
	var stats cacheWriteStats
	var err error
	if stats.fromCache, stats.fetched, err = s.fillCacheSources(conn, recs); err != nil {
		return 0, stats, err
	}
	fenced := func(ops ...any) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := conn.Multi(append([]any{&zk.CheckVersionRequest{Path: s.epochPath(), Version: fence}}, ops...)...)
		return err
	}
	if _, err := conn.Create(s.cachePath(), nil, 0, s.cfg.ACL); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return 0, stats, fmt.Errorf("create %s: %w", s.cachePath(), err)
	}
	id := fmt.Sprintf("%d-%d", fence, time.Now().UnixNano())
	dir := s.cachePath() + "/" + id
	if err := fenced(&zk.CreateRequest{Path: dir, Acl: s.cfg.ACL}); err != nil {
		return 0, stats, fmt.Errorf("create %s: %w", dir, err)
	}
	prefix := s.path("state") + "/"
	limit := maxMultiBytes - zkMultiOverhead - 2*zkOpOverhead - len(dir) - 64
	var chunk []byte
	chunks, records := 0, 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		path := fmt.Sprintf("%s/%d", dir, chunks)
		if err := fenced(&zk.CreateRequest{Path: path, Data: chunk, Acl: s.cfg.ACL}); err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
		chunks++
		chunk = chunk[:0]
		return nil
	}
	for _, r := range recs {
		if r.seq == 0 || r.data == nil {
			continue // named as earlier versions did: never cached
		}
		rel := strings.TrimPrefix(r.path, prefix)
		size := len(rel) + 1 + len(r.data) + 1
		if size > maxRequestBytes-64<<10 {
			continue // read one by one
		}
		if len(chunk)+size > limit {
			if err := flush(); err != nil {
				return 0, stats, err
			}
		}
		chunk = append(append(append(append(chunk, rel...), '\t'), r.data...), '\n')
		records++
	}
	if err := flush(); err != nil {
		return 0, stats, err
	}
	pointer, _ := json.Marshal(zkCachePointer{ID: id, Chunks: chunks, Records: records})
	if err := fenced(&zk.SetDataRequest{Path: s.cachePath(), Data: pointer, Version: -1}); err != nil {
		return 0, stats, fmt.Errorf("set %s: %w", s.cachePath(), err)
	}
	if err := s.removeOldCaches(ctx, conn, id, fenced); err != nil {
		s.cfg.Log.Warn("zk store: remove older record caches", "err", err)
	}
	stats.fromMemory = records - stats.fromCache - stats.fetched
	s.cfg.Log.Info("zk store: record cache written", "records", records, "chunks", chunks,
		"from_previous_cache", stats.fromCache, "read_one_by_one", stats.fetched, "took", time.Since(start).Round(time.Millisecond))
	return records, stats, nil
}

// removeOldCaches deletes every cache but keep, in fenced Multis.
func (s *ZKStore) removeOldCaches(ctx context.Context, conn *zk.Conn, keep string, fenced func(ops ...any) error) error {
	ids, _, err := conn.Children(s.cachePath())
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id == keep {
			continue
		}
		dir := s.cachePath() + "/" + id
		names, _, err := conn.Children(dir)
		if err != nil {
			return err
		}
		var ops []any
		for _, n := range names {
			ops = append(ops, &zk.DeleteRequest{Path: dir + "/" + n, Version: -1})
			if len(ops) == 500 {
				if err := fenced(ops...); err != nil {
					return fmt.Errorf("delete chunks of %s: %w", dir, err)
				}
				ops = ops[:0]
			}
		}
		if err := fenced(append(ops, &zk.DeleteRequest{Path: dir, Version: -1})...); err != nil {
			return fmt.Errorf("delete %s: %w", dir, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// stopCacheWhenDone waits for the cache writer to finish, then lets go
// of the session (benchmarks, tests).
func (s *ZKStore) stopCacheWhenDone() {
	s.mu.Lock()
	done := s.cacheDone
	s.mu.Unlock()
	if done != nil {
		<-done
	}
	s.Close()
}

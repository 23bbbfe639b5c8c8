package master

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/atollhq/atoll/events"
)

// ZKStore keeps the state in ZooKeeper, one znode per record, under
// <root>/state:
//
//	<root>/leader_epoch                  fencing node: bumped at every takeover
//	<root>/state/counter                 {"epoch":E,"seq":S} of the last event
//	<root>/state/leader                  the Leader record
//	<root>/state/apps/<id>@<seq>         one App each
//	<root>/state/agents/<id>@<seq>       one Agent each
//	<root>/state/deployments/<id>@<seq>  one Deployment each
//	<root>/state/tasks/<xx>/<id>@<seq>   one Task each, in 256 buckets by hash
//	<root>/state/cache[/<id>/<i>]        the record cache (see zkcache.go)
//
// Ids are escaped (they contain "/"); seq is the event that wrote the
// record, so a znode's name says which version of the record it holds.
// Earlier versions named record znodes <id> alone: those load, and are
// renamed when next written. Tasks are bucketed so that no getChildren
// reply comes near jute.maxbuffer (about 1 MB, some 12,000 names) however
// many tasks one app has.
//
// AppendAll puts the record ops of many events in one Multi, up to
// maxMultiBytes, and the counter at the last of them; the Multis of one
// call are in flight two at a time, each conditional on the one before
// it.
//
// Load is a takeover: it bumps leader_epoch with a version-checked set and
// only then reads the state, and every Multi of AppendAll checks
// leader_epoch at the version this store set. Once a newer leader has
// loaded, an older store's Multi fails atomically with ErrFenced, and so
// does every later one.
type ZKStore struct {
	cfg ZKStoreConfig

	mu     sync.Mutex
	conn   *zk.Conn
	lost   func(error) // told when this store can write no more
	fence  int32       // leader_epoch's version as set by our takeover
	loaded bool
	// broken is why AppendAll refuses: fenced, or a write whose outcome is
	// unknown (the connection failed under it). Only a new Load clears it.
	broken error
	// names maps each record's base path (<dir>/<escaped id>) to its
	// znode's path, so AppendAll knows what a put replaces without asking.
	names map[string]string
	// written is the records AppendAll wrote since the cache writer last
	// started, by base: what it caches without reading them back.
	written map[string]zkRecord
	// sinceCache counts the record znodes written since the record cache
	// was (see zkcache.go); cacheRecords is how many records it holds.
	sinceCache, cacheRecords int
	// The cache writer goroutine, owned by the store: stopped by bind and
	// Close.
	cacheStop context.CancelFunc
	cacheDone chan struct{}
	// lastLoad is what the last Load read, for tests and the log.
	lastLoad loadStats
	// lastCacheWrite is where the last cache written got its records.
	lastCacheWrite cacheWriteStats
	// cacheMin: a record cache is written once this many records would
	// otherwise be read one by one (cacheMinRecords; tests change it).
	cacheMin int
	// ignoreCache makes Load read every record one by one (benchmarks).
	ignoreCache bool
	// counterVersion is the counter znode's version after the last Multi
	// this store knows it made: each Multi sets the counter at exactly the
	// version the one before it left (see AppendAll).
	counterVersion int32
	// multis counts the Multi requests AppendAll sent, for tests;
	// resent, those it sent again because they reached ZooKeeper before
	// the Multi ahead of them.
	multis, resent int
	// beforeMulti, when set, runs before each Multi of AppendAll (tests:
	// a takeover between two Multis of one batch).
	beforeMulti func(i int)
	// session is conn, readable without mu (noteAlive).
	session atomic.Pointer[zk.Conn]
	// sendMulti, when set, sends AppendAll's Multis instead of
	// conn.Multi (tests: Multis that reach ZooKeeper out of order).
	sendMulti func(conn *zk.Conn, ops ...any) ([]zk.MultiResponse, error)
}

// ZKStoreConfig says where and how a ZKStore writes.
type ZKStoreConfig struct {
	// Root is the ZooKeeper path of the cluster, e.g. "/atoll".
	Root string
	// ACL is set on every znode the store creates; nil means world:anyone.
	ACL []zk.ACL
	// Owner names the master in leader_epoch, for operators.
	Owner string
	Log   *slog.Logger
	// Alive, if set, is told the start of each of the store's calls on
	// the bound session that succeeded: a leader's lease runs from its
	// last such call (lease.go), and a store busy with that session must
	// not starve it (ZooKeeper answers a session's calls in order, so a
	// lease renewal waits behind the store's Multis and reads).
	Alive func(start time.Time)
}

const (
	taskBuckets = 256
	// maxMultiBytes is what AppendAll puts in one Multi, by its estimate
	// of the request's size: well under jute.maxbuffer (about 1 MB by
	// default), over which the server drops the connection, which would
	// cost the leadership instead of failing one write. An event larger
	// than that goes in a Multi of its own, up to maxRequestBytes.
	maxMultiBytes = 512 << 10
	// maxRequestBytes is the largest Multi AppendAll sends at all.
	maxRequestBytes = 1<<20 - 64<<10
)

// noteAlive reports a call on conn that started at start and succeeded,
// if conn is the bound session.
func (s *ZKStore) noteAlive(conn *zk.Conn, start time.Time) {
	if s.cfg.Alive != nil && conn != nil && conn == s.session.Load() {
		s.cfg.Alive(start)
	}
}

// NewZKStore returns a store that writes through conn (nil: bind later).
func NewZKStore(conn *zk.Conn, cfg ZKStoreConfig) *ZKStore {
	if cfg.ACL == nil {
		cfg.ACL = zk.WorldACL(zk.PermAll)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Root = "/" + strings.Trim(cfg.Root, "/")
	s := &ZKStore{cfg: cfg, conn: conn, cacheMin: cacheMinRecords}
	s.session.Store(conn)
	return s
}

// bind points the store at a new session; it must Load before it writes.
// lost is called (without blocking) when the store stops being able to
// write: fenced, or a write with an unknown outcome.
func (s *ZKStore) bind(conn *zk.Conn, lost func(error)) {
	s.stopCache()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn, s.lost = conn, lost
	s.session.Store(conn)
	s.loaded, s.broken, s.names, s.written = false, nil, nil, nil
}

func (s *ZKStore) path(parts ...string) string {
	if s.cfg.Root == "/" {
		return "/" + strings.Join(parts, "/")
	}
	return s.cfg.Root + "/" + strings.Join(parts, "/")
}

func (s *ZKStore) epochPath() string   { return s.path("leader_epoch") }
func (s *ZKStore) counterPath() string { return s.path("state", "counter") }
func (s *ZKStore) leaderPath() string  { return s.path("state", "leader") }

// recordDirs are the collections of one-level records.
var recordDirs = []string{"apps", "agents", "deployments", "appversions", "failures", "groups", "groupversions", "keptapps"}

// laterRecordDirs are the record folders added after layouts were first
// made, created when missing.
var laterRecordDirs = []string{"groupversions", "keptapps"}

func (s *ZKStore) recordPath(dir, id string) string {
	return s.path("state", dir, escapeID(id))
}

// groupVersionPath is the record of one version of a group's contents.
func (s *ZKStore) groupVersionPath(g *events.GroupVersion) string {
	return s.recordPath("groupversions", g.ID+" "+g.Version.UTC().Format(time.RFC3339Nano))
}

// keptAppPath is the record of one app definition kept for group versions.
func (s *ZKStore) keptAppPath(a *events.App) string {
	return s.recordPath("keptapps", a.ID+" "+a.Version.UTC().Format(time.RFC3339Nano))
}

// appVersionPath is the record of one kept definition of an app: one
// znode name of the app id and the version, apart.
func (s *ZKStore) appVersionPath(a *events.App) string {
	return s.recordPath("appversions", a.ID+" "+a.Version.UTC().Format(time.RFC3339Nano))
}

func (s *ZKStore) taskPath(id string) string {
	return s.path("state", "tasks", taskBucket(id), escapeID(id))
}

func taskBucket(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("%02x", h.Sum32()%taskBuckets)
}

// escapeID makes an id one znode name: bytes outside [A-Za-z0-9._~-]
// become %XX (url.PathUnescape undoes it), and so do the dots of "." and
// "..", which ZooKeeper refuses as names.
func escapeID(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '~':
			b.WriteByte(c)
		case c == '.' && id != "." && id != "..":
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

type counter struct {
	Epoch uint64 `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// Load implements Store: it takes the store over (see ZKStore) and reads
// the state. After it returns, no older leader can change what it read.
func (s *ZKStore) Load() (*events.State, error) {
	s.stopCache()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil, fmt.Errorf("zk store: load: no session: %w", ErrNotLeader)
	}
	s.loaded, s.broken = false, nil
	if err := s.ensureLayout(); err != nil {
		return nil, err
	}
	fence, err := s.takeover()
	if err != nil {
		return nil, err
	}
	st, recs, err := s.read()
	if err != nil {
		return nil, err
	}
	s.fence, s.loaded = fence, true
	s.names = make(map[string]string, len(recs))
	for _, r := range recs {
		s.names[r.base] = r.path
	}
	s.written = map[string]zkRecord{}
	s.sinceCache, s.cacheRecords = s.lastLoad.fetched, s.lastLoad.cached
	s.maybeRefreshCache(recs)
	if s.cacheDone == nil {
		// No cache of recs is being written: the next cache takes what
		// this one does not hold from here.
		for _, r := range recs {
			if !r.cached && r.seq > 0 {
				s.written[r.base] = r
			}
		}
	}
	return st, nil
}

// ensureLayout creates the fixed znodes that are missing. tasks/ff is
// created last, so finding it means the layout is complete.
func (s *ZKStore) ensureLayout() error {
	last := s.path("state", "tasks", fmt.Sprintf("%02x", taskBuckets-1))
	if ok, _, err := s.conn.Exists(last); err != nil {
		return fmt.Errorf("zk store: check layout: %w", err)
	} else if ok {
		// A layout made before group versions lacks their folders.
		for _, d := range laterRecordDirs {
			if _, err := s.conn.Create(s.path("state", d), nil, 0, s.cfg.ACL); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				return fmt.Errorf("zk store: create %s: %w", s.path("state", d), err)
			}
		}
		return nil
	}
	initial, _ := json.Marshal(counter{})
	if err := ensurePath(s.conn, s.cfg.Root, s.cfg.ACL); err != nil {
		return fmt.Errorf("zk store: create %s: %w", s.cfg.Root, err)
	}
	nodes := []struct {
		path string
		data []byte
	}{
		{s.epochPath(), nil},
		{s.path("state"), nil},
		{s.counterPath(), initial},
		{s.leaderPath(), nil},
		{s.path("state", "tasks"), nil},
	}
	for _, d := range recordDirs {
		nodes = append(nodes, struct {
			path string
			data []byte
		}{s.path("state", d), nil})
	}
	create := func(path string, data []byte) error {
		if _, err := s.conn.Create(path, data, 0, s.cfg.ACL); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("zk store: create %s: %w", path, err)
		}
		return nil
	}
	for _, n := range nodes {
		if err := create(n.path, n.data); err != nil {
			return err
		}
	}
	if err := parallelN(taskBuckets-1, zkReadsInFlight, func(b int) error {
		return create(s.path("state", "tasks", fmt.Sprintf("%02x", b)), nil)
	}); err != nil {
		return err
	}
	return create(last, nil)
}

// ensurePath creates path and its parents as empty persistent znodes.
func ensurePath(conn *zk.Conn, path string, acl []zk.ACL) error {
	p := ""
	for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
		if part == "" {
			continue
		}
		p += "/" + part
		if _, err := conn.Create(p, nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return err
		}
	}
	return nil
}

// takeover bumps leader_epoch and returns its new version: from then on
// the previous leader's fenced writes fail.
func (s *ZKStore) takeover() (int32, error) {
	_, stat, err := s.conn.Get(s.epochPath())
	if err != nil {
		return 0, fmt.Errorf("zk store: read %s: %w", s.epochPath(), err)
	}
	data, _ := json.Marshal(struct {
		Takeover int32     `json:"takeover"`
		Owner    string    `json:"owner"`
		At       time.Time `json:"at"`
	}{stat.Version + 1, s.cfg.Owner, time.Now().UTC()})
	ns, err := s.conn.Set(s.epochPath(), data, stat.Version)
	if errors.Is(err, zk.ErrBadVersion) {
		return 0, fmt.Errorf("zk store: take over: another master took over at the same time: %w", ErrFenced)
	}
	if err != nil {
		return 0, fmt.Errorf("zk store: take over: %w", err)
	}
	return ns.Version, nil
}

// Close implements Store. The connection belongs to whoever bound it.
func (s *ZKStore) Close() error {
	s.bind(nil, nil)
	return nil
}

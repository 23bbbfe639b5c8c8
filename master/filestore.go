package master

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/fsperm"
)

// FileStore is the local durable store of `atoll dev` and single-master
// setups: a snapshot file plus a log of the events after it, one JSON
// line each, in numbered segments. AppendAll writes a batch with one write
// and one sync (group commit). Once the active segment holds
// segmentEvents events, the next AppendAll starts a new one; a goroutine
// of the store folds the snapshot and the closed segments into a new
// snapshot in the background (see filecompact.go), so appends never wait
// for a compaction.
//
// What AppendAll acknowledged survives: a failed append (a full disk, an
// I/O error, a short write, a failed sync) is cut off again before
// AppendAll returns, so the log never holds a torn line before a good one.
// If even that cut fails, the store refuses every append until it
// succeeds.
//
// The folder and its files are private (0700, 0600): apps carry env, and
// env carries secrets.
type FileStore struct {
	dir    string
	logger *slog.Logger
	// segmentEvents and segmentBytes: a segment that holds either many
	// is closed before the next append.
	segmentEvents int
	segmentBytes  int64
	// compactMin: the closed segments are folded into the snapshot once
	// they hold at least this many events and at least as many as the
	// snapshot has records, so a compaction's cost (about one Load) is
	// spread over as many appended events.
	compactMin int
	// openLog opens a segment; tests wrap the file to make it fail.
	openLog func(path string) (eventLog, error)
	// crashAt, when set, is asked at each step of a compaction whether
	// to stop there as a crash would, leaving the files as they are.
	crashAt func(step string) bool

	// amu serialises AppendAll, Load and Close over the active segment.
	amu  sync.Mutex
	log  eventLog // the active segment
	seg  int      // its number
	path string   // its path
	// size is the length of the active segment's whole, acknowledged
	// lines: where the next line goes, and what a failed append is cut
	// back to.
	size      int64
	segEvents int // events in the active segment
	// broken is why appends are refused: the log may end in a partial
	// line that could not be cut off. The next AppendAll retries the cut.
	broken error

	// mu guards what the appender and the compactor share.
	mu          sync.Mutex
	closed      []segment // closed segments not yet folded, oldest first
	snapRecords int       // records in the snapshot on disk
	compactErr  error     // the last compaction's failure, nil after a success

	// The compactor goroutine, owned by the store: started by Load,
	// stopped by Close (and by a new Load).
	compactMu sync.Mutex // one compaction at a time
	wake      chan struct{}
	stop      context.CancelFunc
	done      chan struct{}
}

// segment is a closed segment of the log.
type segment struct {
	n      int
	events int
}

// eventLog is what the store does with a segment file (an *os.File).
type eventLog interface {
	io.Reader
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}

const (
	snapshotFile = "state.json"
	// logFile is segment 0: the one log of earlier versions, whose
	// stores so load as they are.
	logFile = "events.log"
	// storeDirMode and storeFileMode keep the state from other users.
	storeDirMode  fs.FileMode = 0o700
	storeFileMode fs.FileMode = 0o600

	defaultSegmentEvents = 5000
	defaultSegmentBytes  = 64 << 20
	defaultCompactMin    = 10000
)

// OpenFileStore opens (creating) the store in dir, tightening the modes of
// an existing store that other users could read.
func OpenFileStore(dir string, logger *slog.Logger) (*FileStore, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := fsperm.Dir(dir, storeDirMode, logger); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	names := []string{snapshotFile}
	for _, n := range segs {
		names = append(names, segmentName(n))
	}
	for _, name := range names {
		if err := fsperm.File(filepath.Join(dir, name), storeFileMode, logger); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	return &FileStore{
		dir: dir, logger: logger,
		segmentEvents: defaultSegmentEvents, segmentBytes: defaultSegmentBytes, compactMin: defaultCompactMin,
		openLog: func(path string) (eventLog, error) {
			return os.OpenFile(path, os.O_RDWR|os.O_CREATE, storeFileMode)
		},
	}, nil
}

// Load implements Store: the snapshot, then every logged event that
// follows it, segment by segment. A torn last line of the last segment (a
// crash mid-write: it was never acknowledged) is cut off. A line that
// cannot be decoded but has lines after it is an error naming the file and
// offset: those later lines were acknowledged, and the master must not
// start without them. What an interrupted compaction left (a temporary
// snapshot, segments the snapshot already holds) is cleaned up.
func (f *FileStore) Load() (*events.State, error) {
	f.stopCompactor()
	f.amu.Lock()
	defer f.amu.Unlock()
	removeTempSnapshots(f.dir, f.logger)
	st, records, err := readSnapshot(filepath.Join(f.dir, snapshotFile))
	if err != nil {
		return nil, err
	}
	snapSeq := st.Seq
	segs, err := listSegments(f.dir)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	newLog := len(segs) == 0
	if newLog {
		segs = []int{0}
	}
	var closed []segment
	var folded []int // closed segments the snapshot holds whole
	for i, n := range segs[:len(segs)-1] {
		path := filepath.Join(f.dir, segmentName(n))
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		r, err := replay(data, path, st)
		if err != nil {
			return nil, err
		}
		if r.torn > 0 {
			return nil, fmt.Errorf("event log %s ends in a partial event (%d bytes at offset %d) but %s follows it: "+
				"the log is damaged; move the files aside or repair that line",
				path, r.torn, r.good, segmentName(segs[i+1]))
		}
		if r.lastSeq <= snapSeq {
			folded = append(folded, n)
		} else {
			closed = append(closed, segment{n: n, events: r.events})
		}
	}

	seg := segs[len(segs)-1]
	path := filepath.Join(f.dir, segmentName(seg))
	lf, err := f.openLog(path)
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}
	if newLog {
		// A new file's name must be durable before its first event is.
		if err := fsperm.SyncDir(f.dir); err != nil {
			lf.Close()
			return nil, err
		}
	}
	data, err := io.ReadAll(lf)
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("read event log %s: %w", path, err)
	}
	r, err := replay(data, path, st)
	if err != nil {
		lf.Close()
		return nil, err
	}
	if r.torn > 0 {
		// No newline: the write never finished, so AppendAll never
		// acknowledged it.
		f.logger.Warn("dropping torn event at end of log", "file", path, "offset", r.good, "bytes", r.torn)
	}
	if f.log != nil {
		f.log.Close()
	}
	f.log, f.seg, f.path, f.size, f.segEvents, f.broken = lf, seg, path, r.good, r.events, nil
	// Cut a torn tail so the next append starts on a clean line.
	if err := f.cut(); err != nil {
		f.log, f.size = nil, 0
		lf.Close()
		return nil, err
	}
	// Finish a compaction that stopped before deleting what it folded.
	if len(folded) > 0 {
		if err := f.removeSegments(folded); err != nil {
			f.logger.Warn("store: removing segments the snapshot holds", "err", err)
		}
	}
	f.mu.Lock()
	f.closed, f.snapRecords, f.compactErr = closed, records, nil
	f.mu.Unlock()
	f.startCompactor()
	st.Reindex()
	return st, nil
}

// AppendAll implements Store: evs are durable together, in one write and
// one sync: when it returns nil all of them are, otherwise none (the log
// is as it was before, or the store is unhealthy and says so at every
// later append until it has cut the log back).
func (f *FileStore) AppendAll(evs []events.Event) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	f.amu.Lock()
	defer f.amu.Unlock()
	what := spanOf(evs)
	if f.log == nil {
		return 0, fmt.Errorf("append events %s: store not loaded", what)
	}
	if f.broken != nil {
		if err := f.cut(); err != nil {
			return 0, fmt.Errorf("append events %s: store unhealthy since a failed append could not be undone (%v): %w", what, f.broken, err)
		}
		f.logger.Info("event log repaired: appends accepted again", "file", f.path, "bytes", f.size)
	}
	var lines []byte
	for _, e := range evs {
		line, err := json.Marshal(e)
		if err != nil {
			return 0, fmt.Errorf("append event %s: %w", e.SSEID(), err)
		}
		lines = append(append(lines, line...), '\n')
	}
	if f.segEvents > 0 && (f.segEvents >= f.segmentEvents || f.size >= f.segmentBytes) {
		if err := f.roll(); err != nil {
			// The active segment takes the events; it rolls later.
			f.logger.Warn("store: start a new log segment", "err", err)
		}
	}
	if err := f.write(lines); err != nil {
		err = fmt.Errorf("append events %s to %s: %w", what, f.path, err)
		f.broken = err
		if cerr := f.cut(); cerr != nil {
			f.logger.Error("event log may end in a partial event that could not be cut off: refusing appends until it is",
				"file", f.path, "append_err", err, "cut_err", cerr)
			return 0, fmt.Errorf("%w; undoing it failed, appends are refused until that succeeds: %w", err, cerr)
		}
		return 0, err
	}
	f.size += int64(len(lines))
	f.segEvents += len(evs)
	return len(evs), nil
}

// write puts lines at the end of the active segment and syncs them.
func (f *FileStore) write(lines []byte) error {
	// On an error, part of lines may be on disk whatever n says
	// (os.File.WriteAt does not count a short write's last piece).
	n, err := f.log.WriteAt(lines, f.size)
	if err == nil && n < len(lines) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("write %d bytes at offset %d: %w", len(lines), f.size, err)
	}
	if err := f.log.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

// cut truncates the active segment back to its acknowledged lines and
// syncs that; on success the store is healthy.
func (f *FileStore) cut() error {
	if err := f.log.Truncate(f.size); err != nil {
		return fmt.Errorf("truncate %s to %d bytes: %w", f.path, f.size, err)
	}
	if err := f.log.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.path, err)
	}
	f.broken = nil
	return nil
}

// roll closes the active segment (whole and synced: every append synced
// it) and starts the next one, whose name is durable before any event
// goes in it. The closed segment is left to the compactor.
func (f *FileStore) roll() error {
	next := f.seg + 1
	path := filepath.Join(f.dir, segmentName(next))
	lf, err := f.openLog(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := fsperm.SyncDir(f.dir); err != nil {
		lf.Close()
		os.Remove(path)
		return err
	}
	if err := f.log.Close(); err != nil {
		f.logger.Warn("store: close log segment", "file", f.path, "err", err)
	}
	f.mu.Lock()
	f.closed = append(f.closed, segment{n: f.seg, events: f.segEvents})
	f.mu.Unlock()
	f.log, f.seg, f.path, f.size, f.segEvents = lf, next, path, 0, 0
	f.kickCompactor()
	return nil
}

// Close implements Store: it stops the compactor (a compaction under way
// is abandoned; its files are cleaned up at the next Load) and closes the
// log.
func (f *FileStore) Close() error {
	f.stopCompactor()
	f.amu.Lock()
	defer f.amu.Unlock()
	if f.log == nil {
		return nil
	}
	err := f.log.Close()
	f.log = nil
	return err
}

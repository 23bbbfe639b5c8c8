package master

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/fsperm"
)

// FileStore is the local durable store of `atoll dev` and single-master
// setups: a snapshot file plus an append-only log of the events after it,
// one JSON line each, synced before Append returns. Every compactEvery
// events the state is written as a new snapshot and the log restarts.
//
// What Append acknowledged survives: a failed append (a full disk, an I/O
// error, a short write, a failed sync) is cut off again before Append
// returns, so the log never holds a torn line before a good one. If even
// that cut fails, the store refuses every append until it succeeds.
//
// The folder and its files are private (0700, 0600): apps carry env, and
// env carries secrets.
type FileStore struct {
	dir  string
	log  eventLog
	path string // of the log
	// size is the length of the log's whole, acknowledged lines: where
	// the next line goes, and what a failed append is cut back to.
	size int64
	// broken is why appends are refused: the log may end in a partial
	// line that could not be cut off. The next Append retries the cut.
	broken       error
	sinceSnap    int
	compactEvery int
	logger       *slog.Logger
	// openLog opens the log; tests wrap the file to make it fail.
	openLog func(path string) (eventLog, error)
}

// eventLog is what the store does with its log file (an *os.File).
type eventLog interface {
	io.Reader
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}

const (
	snapshotFile = "state.json"
	logFile      = "events.log"
	// storeDirMode and storeFileMode keep the state from other users.
	storeDirMode  fs.FileMode = 0o700
	storeFileMode fs.FileMode = 0o600
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
	for _, name := range []string{snapshotFile, logFile} {
		if err := fsperm.File(filepath.Join(dir, name), storeFileMode, logger); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	return &FileStore{
		dir: dir, path: filepath.Join(dir, logFile), compactEvery: 1000, logger: logger,
		openLog: func(path string) (eventLog, error) {
			return os.OpenFile(path, os.O_RDWR|os.O_CREATE, storeFileMode)
		},
	}, nil
}

// Load implements Store: the snapshot, then every logged event that
// follows it. A torn last line (a crash mid-write: it was never
// acknowledged) is cut off. A line that cannot be decoded but has lines
// after it is an error naming the file and offset: those later lines were
// acknowledged, and the master must not start without them.
func (f *FileStore) Load() (*events.State, error) {
	st := events.NewState()
	snap := filepath.Join(f.dir, snapshotFile)
	data, err := os.ReadFile(snap)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("load snapshot: %w", err)
	default:
		if err := json.Unmarshal(data, st); err != nil {
			return nil, fmt.Errorf("load snapshot %s: %w", snap, err)
		}
		st.Normalize()
	}

	_, statErr := os.Stat(f.path)
	lf, err := f.openLog(f.path)
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// A new file's name must be durable before its first event is.
		if err := fsperm.SyncDir(f.dir); err != nil {
			lf.Close()
			return nil, err
		}
	}
	good, n, err := replay(lf, f.path, st, f.logger)
	if err != nil {
		lf.Close()
		return nil, err
	}
	if f.log != nil {
		f.log.Close()
	}
	f.log, f.size, f.sinceSnap, f.broken = lf, good, n, nil
	// Cut a torn tail so the next append starts on a clean line.
	if err := f.cut(); err != nil {
		f.log, f.size = nil, 0
		lf.Close()
		return nil, err
	}
	return st, nil
}

// replay applies the logged events to st and returns the offset after the
// last whole line and how many lines it read.
func replay(r io.Reader, path string, st *events.State, logger *slog.Logger) (int64, int, error) {
	br := bufio.NewReader(r)
	var off int64
	n := 0
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				// No newline: the write never finished, so Append
				// never acknowledged it.
				logger.Warn("dropping torn event at end of log", "file", path, "offset", off, "bytes", len(line))
			}
			return off, n, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("read event log %s: %w", path, err)
		}
		e, derr := events.DecodeEvent(line)
		if derr != nil {
			return 0, 0, fmt.Errorf("event log %s: undecodable line at offset %d (%d bytes): %w; "+
				"the events after it were acknowledged, so the master will not start without them: "+
				"move the file aside or repair that line", path, off, len(line), derr)
		}
		n++
		if e.Seq > st.Seq { // else already in the snapshot
			if err := st.Apply(e); err != nil {
				return 0, 0, fmt.Errorf("replay event log %s at offset %d: %w", path, off, err)
			}
		}
		off += int64(len(line))
	}
}

// Append implements Store.
func (f *FileStore) Append(e events.Event) error { return f.appendAll([]events.Event{e}) }

// AppendAll implements Store: all of es or none.
func (f *FileStore) AppendAll(es []events.Event) (int, error) {
	if err := f.appendAll(es); err != nil {
		return 0, err
	}
	return len(es), nil
}

// appendAll makes es durable together, in one write and one sync: when it
// returns nil all of them are, otherwise none (the log is as it was
// before, or the store is unhealthy and says so at every later append
// until it has cut the log back).
func (f *FileStore) appendAll(es []events.Event) error {
	if len(es) == 0 {
		return nil
	}
	what := es[0].SSEID()
	if len(es) > 1 {
		what += ".." + es[len(es)-1].SSEID()
	}
	if f.log == nil {
		return fmt.Errorf("append events %s: store not loaded", what)
	}
	if f.broken != nil {
		if err := f.cut(); err != nil {
			return fmt.Errorf("append events %s: store unhealthy since a failed append could not be undone (%v): %w", what, f.broken, err)
		}
		f.logger.Info("event log repaired: appends accepted again", "file", f.path, "bytes", f.size)
	}
	var lines []byte
	for _, e := range es {
		line, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("append event %s: %w", e.SSEID(), err)
		}
		lines = append(append(lines, line...), '\n')
	}
	if err := f.write(lines); err != nil {
		err = fmt.Errorf("append events %s to %s: %w", what, f.path, err)
		f.broken = err
		if cerr := f.cut(); cerr != nil {
			f.logger.Error("event log may end in a partial event that could not be cut off: refusing appends until it is",
				"file", f.path, "append_err", err, "cut_err", cerr)
			return fmt.Errorf("%w; undoing it failed, appends are refused until that succeeds: %w", err, cerr)
		}
		return err
	}
	f.size += int64(len(lines))
	f.sinceSnap += len(es)
	return nil
}

// write puts lines at the end of the log and syncs them.
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

// cut truncates the log back to its acknowledged lines and syncs that; on
// success the store is healthy.
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

// Applied implements Store: every compactEvery events the state becomes
// the new snapshot.
func (f *FileStore) Applied(s *events.State) {
	if f.sinceSnap < f.compactEvery || f.broken != nil {
		return
	}
	if err := f.compact(s); err != nil {
		// The log still holds everything; compaction can wait.
		f.logger.Warn("store compaction failed", "err", err)
	}
}

// compact writes s as the snapshot and empties the log. The log is cut
// only once the snapshot is durably in place (renamed, folder synced), so
// a crash or a full disk at any point keeps every event: at worst the log
// replays events the snapshot already has (skipped by seq).
func (f *FileStore) compact(s *events.State) error {
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := fsperm.WriteAtomic(filepath.Join(f.dir, snapshotFile), data, 0o600); err != nil {
		return err
	}
	size := f.size
	f.size = 0
	if err := f.cut(); err != nil {
		// The snapshot has every event, so a log that is longer than
		// size 0 only replays what is already there; the next Append
		// cuts it first.
		f.broken = fmt.Errorf("empty the log after a snapshot (was %d bytes): %w", size, err)
		return f.broken
	}
	f.sinceSnap = 0
	return nil
}

// Close implements Store.
func (f *FileStore) Close() error {
	if f.log == nil {
		return nil
	}
	err := f.log.Close()
	f.log = nil
	return err
}

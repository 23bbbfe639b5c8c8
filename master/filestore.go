package master

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/atollhq/atoll/events"
)

// FileStore is the local durable store of `atoll dev` and single-master
// setups: a snapshot file plus an append-only log of the events after it,
// one JSON line each, synced before Append returns. Every compactEvery
// events the state is written as a new snapshot and the log restarts.
type FileStore struct {
	dir          string
	log          *os.File
	sinceSnap    int
	compactEvery int
	logger       *slog.Logger
}

const (
	snapshotFile = "state.json"
	logFile      = "events.log"
)

// OpenFileStore opens (creating) the store in dir.
func OpenFileStore(dir string, logger *slog.Logger) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &FileStore{dir: dir, compactEvery: 1000, logger: logger}, nil
}

// Load implements Store: the snapshot, then every whole logged event that
// follows it. A torn last line (a crash mid-write) is dropped, never applied.
func (f *FileStore) Load() (*events.State, error) {
	st := events.NewState()
	data, err := os.ReadFile(filepath.Join(f.dir, snapshotFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("load snapshot: %w", err)
	default:
		if err := json.Unmarshal(data, st); err != nil {
			return nil, fmt.Errorf("load snapshot %s: %w", filepath.Join(f.dir, snapshotFile), err)
		}
		st.Normalize()
	}

	path := filepath.Join(f.dir, logFile)
	lf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}
	good, n, err := replay(lf, st, f.logger)
	if err != nil {
		lf.Close()
		return nil, err
	}
	// Cut a torn tail so the next append starts on a clean line.
	if err := lf.Truncate(good); err != nil {
		lf.Close()
		return nil, fmt.Errorf("truncate event log: %w", err)
	}
	if _, err := lf.Seek(good, io.SeekStart); err != nil {
		lf.Close()
		return nil, fmt.Errorf("seek event log: %w", err)
	}
	if f.log != nil {
		f.log.Close()
	}
	f.log, f.sinceSnap = lf, n
	return st, nil
}

// replay applies the logged events to st and returns the offset after the
// last good line and how many lines were read.
func replay(r io.Reader, st *events.State, logger *slog.Logger) (int64, int, error) {
	br := bufio.NewReader(r)
	var off int64
	n := 0
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				logger.Warn("dropping torn event at end of log", "bytes", len(line))
			}
			return off, n, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("read event log: %w", err)
		}
		e, derr := events.DecodeEvent(line)
		if derr != nil {
			logger.Warn("dropping undecodable event and the rest of the log", "offset", off, "err", derr)
			return off, n, nil
		}
		n++
		off += int64(len(line))
		if e.Seq <= st.Seq {
			continue // already in the snapshot
		}
		if err := st.Apply(e); err != nil {
			return 0, 0, fmt.Errorf("replay event log at offset %d: %w", off, err)
		}
	}
}

// Append implements Store.
func (f *FileStore) Append(e events.Event) error {
	if f.log == nil {
		return fmt.Errorf("append event %s: store not loaded", e.SSEID())
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("append event %s: %w", e.SSEID(), err)
	}
	line = append(line, '\n')
	if _, err := f.log.Write(line); err != nil {
		return fmt.Errorf("append event %s: %w", e.SSEID(), err)
	}
	if err := f.log.Sync(); err != nil {
		return fmt.Errorf("append event %s: sync: %w", e.SSEID(), err)
	}
	f.sinceSnap++
	return nil
}

// Applied implements Store: every compactEvery events the state becomes
// the new snapshot.
func (f *FileStore) Applied(s *events.State) {
	if f.sinceSnap < f.compactEvery {
		return
	}
	if err := f.compact(s); err != nil {
		// The log still holds everything; compaction can wait.
		f.logger.Warn("store compaction failed", "err", err)
	}
}

// compact writes s as the snapshot and empties the log. The snapshot is
// renamed into place before the log is cut, so a crash in between only
// replays events the snapshot already has (skipped by seq).
func (f *FileStore) compact(s *events.State) error {
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(f.dir, snapshotFile), data); err != nil {
		return err
	}
	if err := f.log.Truncate(0); err != nil {
		return fmt.Errorf("truncate event log: %w", err)
	}
	if _, err := f.log.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("seek event log: %w", err)
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

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

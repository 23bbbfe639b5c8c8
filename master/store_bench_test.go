package master

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// The stores' benchmarks hold a cluster of 100,000 tasks of 10,000 apps
// on 1,000 agents: what a leader loads when it takes over (issue 13:
// serving within 10 s on the local store, 20 s on ZooKeeper).
const (
	scaleTasks  = 100000
	scaleApps   = 10000
	scaleAgents = 1000
	// scaleBatch is how many events the generators store per AppendAll.
	scaleBatch = 1000
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// fileScale is a FileStore folder holding the scale cluster as a
// snapshot, and one that also holds a log of as many task updates again,
// not yet compacted (the most a Load replays before the compactor runs).
var fileScale struct {
	once            sync.Once
	snapDir, logDir string

	snapBytes         int64
	compact, appendAt time.Duration
	err               error
}

func openQuiet(dir string) (*FileStore, error) {
	fs, err := OpenFileStore(dir, quietLog)
	if err != nil {
		return nil, err
	}
	fs.compactMin = 1 << 30 // the benchmarks compact when they say so
	return fs, nil
}

// appendBatches stores evs in batches of scaleBatch.
func appendBatches(s Store, evs []events.Event) error {
	for i := 0; i < len(evs); i += scaleBatch {
		part := evs[i:min(i+scaleBatch, len(evs))]
		if n, err := s.AppendAll(part); err != nil || n != len(part) {
			return fmt.Errorf("append %s: stored %d of %d: %w", spanOf(part), n, len(part), err)
		}
	}
	return nil
}

func setupFileScale(b *testing.B) {
	b.Helper()
	fileScale.once.Do(func() {
		fileScale.err = func() error {
			root, err := os.MkdirTemp("", "atoll-filestore-bench")
			if err != nil {
				return err
			}
			fileScale.snapDir, fileScale.logDir = filepath.Join(root, "snap"), filepath.Join(root, "log")
			fs, err := openQuiet(fileScale.snapDir)
			if err != nil {
				return err
			}
			st, err := fs.Load()
			if err != nil {
				return err
			}
			evs := stampAll(st, 1, scaleChanges(scaleTasks, scaleApps, scaleAgents))
			start := time.Now()
			if err := appendBatches(fs, evs); err != nil {
				return err
			}
			fileScale.appendAt = time.Since(start)
			start = time.Now()
			if err := fs.compact(context.Background()); err != nil {
				return err
			}
			fileScale.compact = time.Since(start)
			fs.Close()
			info, err := os.Stat(filepath.Join(fileScale.snapDir, snapshotFile))
			if err != nil {
				return err
			}
			fileScale.snapBytes = info.Size()

			// The same files, and a log of a status update per task.
			if err := os.MkdirAll(fileScale.logDir, storeDirMode); err != nil {
				return err
			}
			entries, err := os.ReadDir(fileScale.snapDir)
			if err != nil {
				return err
			}
			for _, e := range entries {
				data, err := os.ReadFile(filepath.Join(fileScale.snapDir, e.Name()))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(fileScale.logDir, e.Name()), data, storeFileMode); err != nil {
					return err
				}
			}
			fs, err = openQuiet(fileScale.logDir)
			if err != nil {
				return err
			}
			defer fs.Close()
			st2, err := fs.Load()
			if err != nil {
				return err
			}
			var updates []events.Change
			for _, t := range st2.Tasks {
				t.Message = "health check passed"
				updates = append(updates, events.PutTask(t))
			}
			return appendBatches(fs, stampAll(st2, 1, updates))
		}()
	})
	if fileScale.err != nil {
		b.Fatal(fileScale.err)
	}
}

// BenchmarkFileStoreLoad100k is a local leader's restart: Load of the
// scale cluster from its snapshot, and from the snapshot plus a log of
// 100,000 events not yet compacted, indexes built.
func BenchmarkFileStoreLoad100k(b *testing.B) {
	setupFileScale(b)
	for _, tc := range []struct{ name, dir string }{
		{"snapshot", fileScale.snapDir},
		{"snapshot+100k-events", fileScale.logDir},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var tasks int
			for b.Loop() {
				fs, err := openQuiet(tc.dir)
				if err != nil {
					b.Fatal(err)
				}
				st, err := fs.Load()
				if err != nil {
					b.Fatal(err)
				}
				tasks = len(st.Tasks)
				fs.Close()
			}
			if tasks != scaleTasks {
				b.Fatalf("loaded %d tasks, want %d", tasks, scaleTasks)
			}
			b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N), "s/load")
			b.ReportMetric(float64(fileScale.snapBytes)/1e6, "snapshot-MB")
		})
	}
}

// BenchmarkFileStoreCompact100k is what the compactor spends, on its own
// goroutine, to fold 111,000 events into a snapshot of the scale cluster,
// and what storing them in batches of 1,000 cost.
func BenchmarkFileStoreCompact100k(b *testing.B) {
	setupFileScale(b)
	for b.Loop() {
		// The figure is the setup's: one compaction, measured there.
	}
	b.ReportMetric(fileScale.compact.Seconds(), "s/compaction")
	b.ReportMetric(float64(scaleTasks+scaleApps+scaleAgents)/fileScale.appendAt.Seconds(), "appended-events/s")
}

// BenchmarkFileStoreAppendAll is group commit: one write and one fsync
// per batch, whatever its size.
func BenchmarkFileStoreAppendAll(b *testing.B) {
	for _, batch := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("batch-%d", batch), func(b *testing.B) {
			fs, err := openQuiet(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer fs.Close()
			st, err := fs.Load()
			if err != nil {
				b.Fatal(err)
			}
			changes := scaleChanges(batch, 1, 1)[2:]
			for b.Loop() {
				if _, err := fs.AppendAll(stampAll(st, 1, changes)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

package master

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// countingLog counts what the store does to its log.
type countingLog struct {
	*os.File
	mu            sync.Mutex
	writes, syncs int
}

func (l *countingLog) WriteAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	l.writes++
	l.mu.Unlock()
	return l.File.WriteAt(p, off)
}

func (l *countingLog) Sync() error {
	l.mu.Lock()
	l.syncs++
	l.mu.Unlock()
	return l.File.Sync()
}

// appChanges are n app updates, a few hundred bytes each.
func appChanges(prefix string, n int) []events.Change {
	out := make([]events.Change, n)
	for i := range out {
		out[i] = events.PutApp(eventstest.App(fmt.Sprintf("/%s/app%d", prefix, i), 1))
	}
	return out
}

// A batch is one write and one sync, however many events it holds.
func TestFileStoreGroupCommit(t *testing.T) {
	dir := t.TempDir()
	fs, err := OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cl *countingLog
	fs.openLog = func(path string) (eventLog, error) {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, storeFileMode)
		cl = &countingLog{File: f}
		return cl, err
	}
	st, err := fs.Load()
	if err != nil {
		t.Fatal(err)
	}
	before := cl.syncs // the cut of Load
	evs := stampAll(st, 1, appChanges("g", 500))
	if n, err := fs.AppendAll(evs); err != nil || n != len(evs) {
		t.Fatalf("AppendAll of %d events: stored %d: %v", len(evs), n, err)
	}
	if cl.writes != 1 || cl.syncs-before != 1 {
		t.Fatalf("AppendAll of %d events: %d writes and %d syncs, want 1 and 1", len(evs), cl.writes, cl.syncs-before)
	}
	fs.Close()
	if err := eventstest.Equal(reload(t, dir), st); err != nil {
		t.Fatal(err)
	}
}

// waitCompacted waits until the store has folded every closed segment.
func waitCompacted(t *testing.T, fs *FileStore) {
	t.Helper()
	eventually(t, 20*time.Second, "closed segments folded and removed", func() bool {
		fs.mu.Lock()
		closed := len(fs.closed)
		fs.mu.Unlock()
		segs, _ := listSegments(fs.dir)
		return closed == 0 && len(segs) == 1
	})
}

// Appends go on while a compaction is under way (held here between writing
// the new snapshot and putting it in place): the compactor works on closed
// segments, on its own goroutine. Once it is done, the closed segments are
// gone and a restart loads every event.
func TestFileStoreAppendsWhileCompacting(t *testing.T) {
	dir := t.TempDir()
	fs, err := OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs.segmentEvents, fs.compactMin = 10, 20
	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fs.crashAt = func(step string) bool {
		if step == "temp-written" {
			once.Do(func() { close(reached); <-release })
		}
		return false
	}
	st, err := fs.Load()
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	changes := appChanges("c", 300)
	for i := 0; i < 30; i += 5 {
		if _, err := fs.AppendAll(stampAll(st, 1, changes[i:i+5])); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-reached:
	case <-time.After(20 * time.Second):
		t.Fatal("no compaction started after 30 events in segments of 10")
	}
	// The compactor is stopped mid-way; appends do not wait for it.
	done := make(chan error, 1)
	go func() {
		for i := 30; i < len(changes); i += 10 {
			if _, err := fs.AppendAll(stampAll(st, 1, changes[i:i+10])); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("appends blocked while a compaction was under way")
	}
	close(release)
	waitCompacted(t, fs)
	fs.Close()
	if err := eventstest.Equal(reload(t, dir), st); err != nil {
		t.Fatal(err)
	}
}

// A compaction stopped at any step, as by a crash, leaves files that load
// as the state of every acknowledged event; Load cleans up what the
// compaction left, and the store goes on from there.
func TestFileStoreCrashDuringCompaction(t *testing.T) {
	for _, tc := range []struct {
		step string
		// check looks at the files the crash left.
		check func(t *testing.T, dir string)
		// segments Load keeps: it removes those the snapshot holds.
		loaded int
	}{
		{"temp-written", func(t *testing.T, dir string) {
			if tmps, _ := filepath.Glob(filepath.Join(dir, ".state.json.tmp*")); len(tmps) != 1 {
				t.Fatalf("temporary snapshots left: %v, want one", tmps)
			}
			if segs, _ := listSegments(dir); len(segs) != 3 {
				t.Fatalf("segments left %v, want all 3", segs)
			}
		}, 3},
		{"renamed", func(t *testing.T, dir string) {
			if segs, _ := listSegments(dir); len(segs) != 3 {
				t.Fatalf("segments left %v, want all 3", segs)
			}
		}, 1},
		{"removed-one", func(t *testing.T, dir string) {
			if segs, _ := listSegments(dir); len(segs) != 2 {
				t.Fatalf("segments left %v, want 2", segs)
			}
		}, 1},
	} {
		t.Run(tc.step, func(t *testing.T) {
			dir := t.TempDir()
			fs, err := OpenFileStore(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			fs.segmentEvents, fs.compactMin = 3, 1<<30
			st, err := fs.Load()
			if err != nil {
				t.Fatal(err)
			}
			// An older snapshot first, so that a crash has one to keep.
			appendAll(t, fs, st, appChanges("old", 4)...)
			if err := fs.compact(context.Background()); err != nil {
				t.Fatal(err)
			}
			appendAll(t, fs, st, append(appChanges("new", 6), events.DeleteApp("/old/app1"))...)
			if segs, _ := listSegments(dir); len(segs) != 3 {
				t.Fatalf("segments before the crash: %v, want 3 (2 closed)", segs)
			}
			fs.crashAt = func(step string) bool { return step == tc.step }
			if err := fs.compact(context.Background()); !errors.Is(err, errCrash) {
				t.Fatalf("compaction: %v, want the simulated crash", err)
			}
			fs.Close()
			tc.check(t, dir)

			fs2, err := OpenFileStore(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			fs2.segmentEvents, fs2.compactMin = 3, 1<<30
			got, err := fs2.Load()
			if err != nil {
				t.Fatalf("load after a crash at %s: %v", tc.step, err)
			}
			if err := eventstest.Equal(got, st); err != nil {
				t.Fatalf("load after a crash at %s: %v", tc.step, err)
			}
			if segs, _ := listSegments(dir); len(segs) != tc.loaded {
				t.Errorf("segments after Load: %v, want %d", segs, tc.loaded)
			}
			if tmps, _ := filepath.Glob(filepath.Join(dir, ".state.json.tmp*")); len(tmps) != 0 {
				t.Errorf("temporary snapshots still there after Load: %v", tmps)
			}
			// The store goes on: more events, a whole compaction, a restart.
			appendAll(t, fs2, got, appChanges("after", 5)...)
			if err := fs2.compact(context.Background()); err != nil {
				t.Fatal(err)
			}
			fs2.Close()
			if err := eventstest.Equal(reload(t, dir), got); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A store of the earlier layout (one snapshot object, one events.log that
// repeats some of its events) loads, and its log is folded like any
// closed segment.
func TestFileStoreLoadsEarlierLayout(t *testing.T) {
	dir := t.TempDir()
	st := events.NewState()
	evs := stampAll(st, 1, appChanges("v1", 6))
	snap := events.NewState()
	for _, e := range evs[:4] {
		if err := snap.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	data, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, snapshotFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	var log []byte
	for _, e := range evs[2:] { // 3 and 4 are in the snapshot too
		line, _ := json.Marshal(e)
		log = append(append(log, line...), '\n')
	}
	if err := os.WriteFile(filepath.Join(dir, logFile), log, 0o600); err != nil {
		t.Fatal(err)
	}

	fs, err := OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs.segmentEvents, fs.compactMin = 1, 1<<30
	got, err := fs.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := eventstest.Equal(got, st); err != nil {
		t.Fatalf("earlier layout loaded: %v", err)
	}
	appendAll(t, fs, got, events.DeleteApp("/v1/app0"))
	if err := fs.compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	fs.Close()
	if _, err := os.Stat(filepath.Join(dir, logFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("events.log still there after it was folded: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, snapshotFile)); !strings.HasPrefix(string(data), `{"format":"`+snapshotFormat) {
		t.Errorf("snapshot after compaction starts %.40q, want the %s header", data, snapshotFormat)
	}
	if err := eventstest.Equal(reload(t, dir), got); err != nil {
		t.Fatal(err)
	}
}

// Damage Load must not step over: a closed segment that ends in a partial
// event (acknowledged events follow it in the next segment), a snapshot
// cut short, a snapshot of an unknown format. Each is an error naming the
// file, and the files are left as they are.
func TestFileStoreLoadRefusesDamage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, dir string) string // returns the file the error must name
		wantErr string
	}{
		{"partial event in a closed segment", func(t *testing.T, dir string) string {
			segs, _ := listSegments(dir)
			path := filepath.Join(dir, segmentName(segs[0]))
			data, _ := os.ReadFile(path)
			os.WriteFile(path, data[:len(data)-10], 0o600)
			return path
		}, "partial event"},
		{"snapshot cut short", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, snapshotFile)
			data, _ := os.ReadFile(path)
			os.WriteFile(path, data[:len(data)/2], 0o600)
			return path
		}, "damaged"},
		{"snapshot of another format", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, snapshotFile)
			os.WriteFile(path, []byte(`{"format":"atoll-snapshot/9"}`+"\n"), 0o600)
			return path
		}, "atoll-snapshot/9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fs, err := OpenFileStore(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			fs.segmentEvents, fs.compactMin = 2, 1<<30
			st, err := fs.Load()
			if err != nil {
				t.Fatal(err)
			}
			appendAll(t, fs, st, appChanges("a", 3)...)
			if err := fs.compact(context.Background()); err != nil {
				t.Fatal(err)
			}
			appendAll(t, fs, st, appChanges("b", 5)...)
			fs.Close()
			path := tc.damage(t, dir)
			before := dirContents(t, dir)

			fs2, _ := OpenFileStore(dir, nil)
			defer fs2.Close()
			_, err = fs2.Load()
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load: %v; want an error naming %s and saying %q", err, path, tc.wantErr)
			}
			if after := dirContents(t, dir); after != before {
				t.Errorf("a refused Load changed the files:\n%s\nwas\n%s", after, before)
			}
		})
	}
}

// dirContents describes every file in dir by name and size.
func dirContents(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		info, _ := e.Info()
		fmt.Fprintf(&b, "%s %d\n", e.Name(), info.Size())
	}
	return b.String()
}

// A compaction is due when the closed log holds at least compactMin events
// and at least as many as the snapshot has records: at 100,000 records,
// not before 100,000 events, so its cost is spread over them.
func TestFileStoreCompactionDue(t *testing.T) {
	fs := &FileStore{compactMin: 1000}
	for _, tc := range []struct {
		closed  []segment
		records int
		want    bool
	}{
		{nil, 0, false},
		{[]segment{{1, 999}}, 0, false},
		{[]segment{{1, 600}, {2, 400}}, 0, true},
		{[]segment{{1, 5000}}, 100000, false},
		{[]segment{{1, 50000}, {2, 50000}}, 100000, true},
	} {
		fs.closed, fs.snapRecords = tc.closed, tc.records
		if got := fs.compactionDue(); got != tc.want {
			t.Errorf("closed %v, snapshot of %d records: due %v, want %v", tc.closed, tc.records, got, tc.want)
		}
	}
}

// A crash right after a new segment was created leaves it empty: Load
// takes it as the active segment, and the segment before it as closed.
func TestFileStoreCrashAfterRoll(t *testing.T) {
	dir := t.TempDir()
	fs, err := OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := fs.Load()
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, fs, st, appChanges("a", 3)...)
	fs.Close()
	if err := os.WriteFile(filepath.Join(dir, segmentName(1)), nil, storeFileMode); err != nil {
		t.Fatal(err)
	}
	fs2, err := OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs2.compactMin = 1
	got, err := fs2.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := eventstest.Equal(got, st); err != nil {
		t.Fatal(err)
	}
	appendAll(t, fs2, got, appChanges("b", 2)...)
	waitCompacted(t, fs2) // segment 0 was closed: folded
	fs2.Close()
	if err := eventstest.Equal(reload(t, dir), got); err != nil {
		t.Fatal(err)
	}
	if segs, _ := listSegments(dir); len(segs) != 1 || segs[0] != 1 {
		t.Fatalf("segments %v, want only 1", segs)
	}
}

// An app's last task failure (Marathon's lastTaskFailure) outlives a
// compaction of the file store, as it outlives a restart on ZooKeeper.
func TestAppFailureSurvivesCompaction(t *testing.T) {
	dir := t.TempDir()
	fs, err := OpenFileStore(dir, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	fs.segmentEvents, fs.compactMin = 5, 1<<30
	st, err := fs.Load()
	if err != nil {
		t.Fatal(err)
	}
	app := eventstest.App("/web", 3000)
	task := events.Task{ID: "web.1", AppID: "/web", AgentID: "a1", Host: "h1", State: events.TaskFailed,
		Message: "Memory limit exceeded", Version: app.Version}
	changes := []events.Change{events.PutApp(app), events.PutTask(task)}
	for i := range 12 { // enough to close segments, so the compaction takes the failure in
		changes = append(changes, events.PutApp(eventstest.App(fmt.Sprintf("/other%d", i), 1)))
	}
	for _, c := range changes {
		if _, err := fs.AppendAll(stampAll(st, 1, []events.Change{c})); err != nil {
			t.Fatal(err)
		}
	}
	if f, ok := st.AppFailures["/web"]; !ok || f.Task.Message != task.Message {
		t.Fatalf("app failures before the compaction: %v", st.AppFailures)
	}
	if err := fs.compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	fs.Close()
	got := reload(t, dir)
	if err := eventstest.Equal(got.Normalize(), st); err != nil {
		t.Fatal(err)
	}
}

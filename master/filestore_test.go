package master

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// appendAll stamps, stores and applies changes the way the leader does.
func appendAll(t *testing.T, fs *FileStore, st *events.State, changes ...events.Change) {
	t.Helper()
	for _, c := range changes {
		e := c.Stamp(st, 1, time.Unix(0, 0))
		if n, err := fs.AppendAll([]events.Event{e}); err != nil || n != 1 {
			t.Fatalf("append %s: stored %d: %v", e.SSEID(), n, err)
		}
		if err := st.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFileStoreSurvivesRestartAndTornTail(t *testing.T) {
	for _, compacted := range []bool{false, true} {
		dir := t.TempDir()
		fs, err := OpenFileStore(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if compacted {
			fs.segmentEvents, fs.compactMin = 1, 1<<30 // compacted below, not in the background
		}
		st, err := fs.Load()
		if err != nil {
			t.Fatal(err)
		}
		appendAll(t, fs, st,
			events.PutApp(events.App{ID: "/a", Instances: 1}),
			events.PutAgent(events.Agent{ID: "ag", State: events.AgentActive}),
			events.PutTask(events.Task{ID: "a.1", AppID: "/a", State: events.TaskRunning}),
		)
		if compacted {
			if err := fs.compact(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		fs.Close()

		// A crash mid-append leaves half a line behind.
		f, err := os.OpenFile(lastSegment(t, dir), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(`{"epoch":1,"seq":4,"type":"app_upd`)
		f.Close()

		fs2, _ := OpenFileStore(dir, nil)
		got, err := fs2.Load()
		if err != nil {
			t.Fatalf("compacted %v: load: %v", compacted, err)
		}
		if got.Seq != 3 || len(got.Apps) != 1 || len(got.Tasks) != 1 || len(got.Agents) != 1 {
			t.Fatalf("compacted %v: reloaded seq %d apps %d tasks %d agents %d; want 3/1/1/1", compacted, got.Seq, len(got.Apps), len(got.Tasks), len(got.Agents))
		}
		// Appending after the torn tail works and survives another restart.
		appendAll(t, fs2, got, events.DeleteApp("/a"))
		fs2.Close()
		fs3, _ := OpenFileStore(dir, nil)
		again, err := fs3.Load()
		if err != nil || again.Seq != 4 || len(again.Apps) != 0 {
			t.Fatalf("compacted %v: after second restart seq %d apps %d err %v", compacted, again.Seq, len(again.Apps), err)
		}
		fs3.Close()
	}
}

// lastSegment is the path of the store's active log segment.
func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments of %s: %v %v", dir, segs, err)
	}
	return filepath.Join(dir, segmentName(segs[len(segs)-1]))
}

// faultyLog is the real log file with the faults a full disk or a failing
// device gives, on cue: a write that puts down only budget bytes and then
// fails with ENOSPC (a short write), a failing fsync, a failing truncate.
type faultyLog struct {
	*os.File
	budget       int // bytes writes may still put down; -1: no limit
	failSyncs    int // how many of the next syncs fail
	failTruncate int // how many of the next truncates fail
}

func (l *faultyLog) WriteAt(p []byte, off int64) (int, error) {
	if l.budget < 0 || len(p) <= l.budget {
		n, err := l.File.WriteAt(p, off)
		if l.budget >= 0 {
			l.budget -= n
		}
		return n, err
	}
	n, err := l.File.WriteAt(p[:l.budget], off)
	l.budget -= n
	if err == nil {
		err = &fs.PathError{Op: "write", Path: l.Name(), Err: syscall.ENOSPC}
	}
	return n, err
}

func (l *faultyLog) Sync() error {
	if l.failSyncs > 0 {
		l.failSyncs--
		return &fs.PathError{Op: "sync", Path: l.Name(), Err: syscall.EIO}
	}
	return l.File.Sync()
}

func (l *faultyLog) Truncate(size int64) error {
	if l.failTruncate > 0 {
		l.failTruncate--
		return &fs.PathError{Op: "truncate", Path: l.Name(), Err: syscall.EIO}
	}
	return l.File.Truncate(size)
}

// openFaulty opens a store in dir whose log faults on cue.
func openFaulty(t *testing.T, dir string) (*FileStore, *faultyLog, *events.State) {
	t.Helper()
	fs, err := OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fl := &faultyLog{budget: -1}
	fs.openLog = func(path string) (eventLog, error) {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, storeFileMode)
		fl.File = f
		return fl, err
	}
	st, err := fs.Load()
	if err != nil {
		t.Fatal(err)
	}
	return fs, fl, st
}

// reload opens the store in dir again, as a restarted master does.
func reload(t *testing.T, dir string) *events.State {
	t.Helper()
	fs, err := OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	st, err := fs.Load()
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	return st
}

func readLog(t *testing.T, dir string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, logFile))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// bulkyApp is an app whose event is several KB, so a fault can tear it.
func bulkyApp(id string) events.App {
	return events.App{ID: id, Instances: 1, Env: map[string]string{"BLOB": strings.Repeat("x", 4000)}}
}

// A failed append leaves the log byte for byte as it was; the next append
// works, and a restart has every acknowledged event and not the failed one.
func TestFileStoreFailedAppendLeavesLogAsBefore(t *testing.T) {
	for _, tt := range []struct {
		name   string
		inject func(*faultyLog)
	}{
		{"short write (ENOSPC)", func(l *faultyLog) { l.budget = 1000 }},
		{"nothing written (ENOSPC)", func(l *faultyLog) { l.budget = 0 }},
		{"sync fails (EIO)", func(l *faultyLog) { l.failSyncs = 1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fs, fl, st := openFaulty(t, dir)
			defer fs.Close()
			appendAll(t, fs, st, events.PutApp(bulkyApp("/acked-1")))
			before := readLog(t, dir)

			tt.inject(fl)
			e := events.PutApp(bulkyApp("/failed")).Stamp(st, 1, time.Unix(0, 0))
			if n, err := fs.AppendAll([]events.Event{e}); err == nil || n != 0 {
				t.Fatal("append with a fault: no error")
			}
			if after := readLog(t, dir); !bytes.Equal(after, before) {
				t.Fatalf("log after the failed append is %d bytes, want the %d it had before", len(after), len(before))
			}

			fl.budget = -1
			appendAll(t, fs, st, events.PutApp(bulkyApp("/acked-2")))
			got := reload(t, dir)
			if _, ok := got.Apps["/failed"]; ok {
				t.Error("the failed append is in the reloaded state")
			}
			for _, id := range []string{"/acked-1", "/acked-2"} {
				if _, ok := got.Apps[id]; !ok {
					t.Errorf("acknowledged app %s lost on reload (apps: %v)", id, got.SortedApps())
				}
			}
			if got.Seq != 2 {
				t.Errorf("reloaded seq %d, want 2", got.Seq)
			}
		})
	}
}

// When the log cannot be cut back after a failed append, the store refuses
// every append (nothing is acknowledged after a torn line) until a later
// append manages the cut.
func TestFileStoreUnhealthyUntilRepaired(t *testing.T) {
	dir := t.TempDir()
	fs, fl, st := openFaulty(t, dir)
	defer fs.Close()
	appendAll(t, fs, st, events.PutApp(bulkyApp("/acked-1")))
	before := readLog(t, dir)

	fl.budget, fl.failTruncate = 1000, 3 // a torn line that stays
	stamp := func(id string) events.Event {
		return events.PutApp(bulkyApp(id)).Stamp(st, 1, time.Unix(0, 0))
	}
	_, err := fs.AppendAll([]events.Event{stamp("/torn")})
	if err == nil || !strings.Contains(err.Error(), "appends are refused") {
		t.Fatalf("append whose undo fails: %v; want an error saying appends are refused", err)
	}
	fl.budget = -1 // space again, but the truncate still fails twice
	for i := range 2 {
		_, err := fs.AppendAll([]events.Event{stamp("/refused")})
		if err == nil || !strings.Contains(err.Error(), "store unhealthy") {
			t.Fatalf("append %d while the log holds a torn line: %v; want a store-unhealthy error", i, err)
		}
		if got := readLog(t, dir); len(got) != len(before)+1000 {
			t.Fatalf("append %d while unhealthy changed the log: %d bytes, want %d (the torn line untouched)", i, len(got), len(before)+1000)
		}
	}
	appendAll(t, fs, st, events.PutApp(bulkyApp("/acked-2"))) // repairs, then appends

	got := reload(t, dir)
	for _, id := range []string{"/torn", "/refused"} {
		if _, ok := got.Apps[id]; ok {
			t.Errorf("%s is in the reloaded state", id)
		}
	}
	for _, id := range []string{"/acked-1", "/acked-2"} {
		if _, ok := got.Apps[id]; !ok {
			t.Errorf("acknowledged app %s lost on reload", id)
		}
	}
}

// The events of one commit are stored together or not at all.
func TestFileStoreAppendAllIsAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	fs, fl, st := openFaulty(t, dir)
	defer fs.Close()
	app := events.PutApp(bulkyApp("/web")).Stamp(st, 1, time.Unix(0, 0))
	dep := events.PutDeployment(events.Deployment{ID: "d1", AffectedApps: []string{"/web"}}).Stamp(st, 1, time.Unix(0, 0))
	dep.Seq = app.Seq + 1
	line, _ := json.Marshal(app)
	fl.budget = len(line) + 1 + 10 // the app's line whole, the deployment's torn
	if n, err := fs.AppendAll([]events.Event{app, dep}); err == nil || n != 0 {
		t.Fatal("AppendAll with a fault: no error")
	}
	if got := readLog(t, dir); len(got) != 0 {
		t.Fatalf("log holds %d bytes after a failed AppendAll, want none", len(got))
	}
	fl.budget = -1
	if n, err := fs.AppendAll([]events.Event{app, dep}); err != nil || n != 2 {
		t.Fatal(err)
	}
	got := reload(t, dir)
	if _, ok := got.Apps["/web"]; !ok || len(got.Deployments) != 1 || got.Seq != 2 {
		t.Fatalf("reloaded apps %d deployments %d seq %d; want 1/1/2", len(got.Apps), len(got.Deployments), got.Seq)
	}
}

// A line that cannot be decoded with lines after it holds back
// acknowledged events: Load refuses, naming the file and the offset,
// instead of dropping the rest of the log.
func TestFileStoreLoadRefusesCorruptLineBeforeGoodOnes(t *testing.T) {
	for _, tt := range []struct {
		name    string
		corrupt func(log []byte, second int) []byte
	}{
		{"torn line, then a good one (the old append bug)", func(log []byte, second int) []byte {
			// The second event was cut mid-write and a later append
			// went on after it.
			return slices.Concat(log[:second+20], log[second:])
		}},
		{"garbage in a middle line", func(log []byte, second int) []byte {
			out := slices.Clone(log)
			copy(out[second+5:], "@@@@")
			return out
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fs, err := OpenFileStore(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			st, err := fs.Load()
			if err != nil {
				t.Fatal(err)
			}
			appendAll(t, fs, st, events.PutApp(events.App{ID: "/a", Instances: 1}))
			second := len(readLog(t, dir))
			appendAll(t, fs, st,
				events.PutApp(events.App{ID: "/b", Instances: 1}),
				events.PutApp(events.App{ID: "/c", Instances: 1}))
			fs.Close()
			path := filepath.Join(dir, logFile)
			if err := os.WriteFile(path, tt.corrupt(readLog(t, dir), second), 0o600); err != nil {
				t.Fatal(err)
			}
			before := readLog(t, dir)

			fs2, _ := OpenFileStore(dir, nil)
			defer fs2.Close()
			_, err = fs2.Load()
			if err == nil {
				t.Fatal("Load of a log with a corrupt middle line: no error")
			}
			for _, want := range []string{path, fmt.Sprintf("offset %d", second)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			if after := readLog(t, dir); !bytes.Equal(after, before) {
				t.Error("a refused Load changed the log")
			}
		})
	}
}

// A snapshot that cannot be written (here: its name is taken by a folder,
// as a full disk fails the write) keeps the log whole, and appends go on;
// once it can be, the closed segments are folded and nothing is lost
// either way.
func TestFileStoreCompactionFailureKeepsTheLog(t *testing.T) {
	dir := t.TempDir()
	fs, err := OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs.segmentEvents, fs.compactMin = 1, 1<<30 // compacted below, not in the background
	st, err := fs.Load()
	if err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(dir, snapshotFile, "x")
	if err := os.MkdirAll(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	appendAll(t, fs, st,
		events.PutApp(events.App{ID: "/a", Instances: 1}),
		events.PutApp(events.App{ID: "/b", Instances: 1}),
		events.PutApp(events.App{ID: "/c", Instances: 1}))
	if err := fs.compact(context.Background()); err == nil {
		t.Fatal("compaction onto a folder: no error")
	}
	if segs, _ := listSegments(dir); len(segs) != 3 {
		t.Fatalf("%d log segments after a failed compaction, want all 3", len(segs))
	}
	appendAll(t, fs, st, events.PutApp(events.App{ID: "/d", Instances: 1}))
	if err := os.RemoveAll(filepath.Join(dir, snapshotFile)); err != nil {
		t.Fatal(err)
	}
	if err := fs.compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	fs.Close()
	if segs, _ := listSegments(dir); len(segs) != 1 {
		t.Fatalf("%d log segments after a compaction, want only the active one", len(segs))
	}
	got := reload(t, dir)
	if got.Seq != 4 || len(got.Apps) != 4 {
		t.Fatalf("reloaded seq %d apps %d, want 4/4", got.Seq, len(got.Apps))
	}
}

// The store's folder and files are private; an existing store that other
// users could read is tightened.
func TestFileStoreModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "master")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{snapshotFile, logFile} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, snapshotFile), []byte(`{"seq":0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, err := OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs.segmentEvents, fs.compactMin = 1, 1<<30
	st, err := fs.Load()
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, fs, st,
		events.PutApp(events.App{ID: "/a", Env: map[string]string{"DB_PASSWORD": "s3cret"}}),
		events.PutApp(events.App{ID: "/b", Env: map[string]string{"DB_PASSWORD": "s3cret"}}))
	if err := fs.compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	fs.Close()
	want := map[string]os.FileMode{
		dir: storeDirMode, filepath.Join(dir, snapshotFile): storeFileMode, lastSegment(t, dir): storeFileMode,
	}
	for path, mode := range want {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != mode {
			t.Errorf("%s has mode %s, want %s", path, info.Mode().Perm(), mode)
		}
	}

	// A new store: created private.
	fresh := filepath.Join(t.TempDir(), "data", "master")
	fs2, err := OpenFileStore(fresh, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs2.Load(); err != nil {
		t.Fatal(err)
	}
	fs2.Close()
	for path, mode := range map[string]os.FileMode{fresh: storeDirMode, filepath.Join(fresh, logFile): storeFileMode} {
		if info, err := os.Stat(path); err != nil || info.Mode().Perm() != mode {
			t.Errorf("new %s: mode %v (err %v), want %s", path, info.Mode().Perm(), err, mode)
		}
	}

	// A shared folder is refused, never chmod-ed.
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileStore(shared, nil); err == nil || !strings.Contains(err.Error(), "shared") {
		t.Errorf("store in a sticky world-writable folder: %v; want it refused as shared", err)
	}
	if info, _ := os.Stat(shared); info.Mode().Perm() != 0o777 {
		t.Errorf("shared folder's mode changed to %s", info.Mode().Perm())
	}
}

package master

import (
	"context"
	"reflect"
	"testing"

	"github.com/atollhq/atoll/events"
)

// indexed reports whether st's app → tasks index is built and complete,
// so the master's per-app work costs what the app has (issue 13: after a
// restart on the FileStore's snapshot, every pass scanned every task).
func indexed(st *events.State) bool {
	ix := reflect.ValueOf(st).Elem().FieldByName("tasksByApp")
	if ix.IsNil() {
		return false
	}
	return int(ix.Elem().FieldByName("count").Int()) == len(st.Tasks)
}

// Every store's Load returns a state with its indexes built, however it
// was stored: a FileStore from its snapshot alone or with a log to
// replay, a MemStore, a ZKStore.
func TestStoresLoadIndexed(t *testing.T) {
	changes := scaleChanges(200, 20, 5)

	t.Run("FileStore", func(t *testing.T) {
		dir := t.TempDir()
		fs, err := OpenFileStore(dir, quietLog)
		if err != nil {
			t.Fatal(err)
		}
		fs.segmentEvents, fs.compactMin = 50, 1<<30
		st, err := fs.Load()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fs.AppendAll(stampAll(st, 1, changes)); err != nil {
			t.Fatal(err)
		}
		if _, err := fs.AppendAll(stampAll(st, 1, changes[:10])); err != nil { // a new segment: the first is closed
			t.Fatal(err)
		}
		if err := fs.compact(context.Background()); err != nil {
			t.Fatal(err)
		}
		fs.Close()
		got := reload(t, dir)
		if len(got.Tasks) != 200 || !indexed(got) {
			t.Fatalf("loaded %d tasks, indexed %v; want 200, true", len(got.Tasks), indexed(got))
		}
	})
	t.Run("MemStore", func(t *testing.T) {
		var m MemStore
		st, _ := m.Load()
		if _, err := m.AppendAll(stampAll(st, 1, changes)); err != nil {
			t.Fatal(err)
		}
		got, _ := m.Load()
		if len(got.Tasks) != 200 || !indexed(got) {
			t.Fatalf("loaded %d tasks, indexed %v; want 200, true", len(got.Tasks), indexed(got))
		}
	})
	t.Run("ZKStore", func(t *testing.T) {
		root := zkRoot(t)
		s := newTestZKStore(t, root, "m1")
		st := load(t, s)
		if _, err := s.AppendAll(stampAll(st, 1, changes)); err != nil {
			t.Fatal(err)
		}
		got := load(t, newTestZKStore(t, root, "m2"))
		if len(got.Tasks) != 200 || !indexed(got) {
			t.Fatalf("loaded %d tasks, indexed %v; want 200, true", len(got.Tasks), indexed(got))
		}
	})
}

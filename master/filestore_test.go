package master

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// appendAll stamps, stores and applies changes the way the leader does.
func appendAll(t *testing.T, fs *FileStore, st *events.State, changes ...events.Change) {
	t.Helper()
	for _, c := range changes {
		e := c.Stamp(st, 1, time.Unix(0, 0))
		if err := fs.Append(e); err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(e); err != nil {
			t.Fatal(err)
		}
		fs.Applied(st)
	}
}

func TestFileStoreSurvivesRestartAndTornTail(t *testing.T) {
	for _, compactEvery := range []int{1000, 2} {
		dir := t.TempDir()
		fs, err := OpenFileStore(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		fs.compactEvery = compactEvery
		st, err := fs.Load()
		if err != nil {
			t.Fatal(err)
		}
		appendAll(t, fs, st,
			events.PutApp(events.App{ID: "/a", Instances: 1}),
			events.PutAgent(events.Agent{ID: "ag", State: events.AgentActive}),
			events.PutTask(events.Task{ID: "a.1", AppID: "/a", State: events.TaskRunning}),
		)
		fs.Close()

		// A crash mid-append leaves half a line behind.
		f, err := os.OpenFile(filepath.Join(dir, logFile), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(`{"epoch":1,"seq":4,"type":"app_upd`)
		f.Close()

		fs2, _ := OpenFileStore(dir, nil)
		got, err := fs2.Load()
		if err != nil {
			t.Fatalf("compact every %d: load: %v", compactEvery, err)
		}
		if got.Seq != 3 || len(got.Apps) != 1 || len(got.Tasks) != 1 || len(got.Agents) != 1 {
			t.Fatalf("compact every %d: reloaded seq %d apps %d tasks %d agents %d; want 3/1/1/1", compactEvery, got.Seq, len(got.Apps), len(got.Tasks), len(got.Agents))
		}
		// Appending after the torn tail works and survives another restart.
		appendAll(t, fs2, got, events.DeleteApp("/a"))
		fs2.Close()
		fs3, _ := OpenFileStore(dir, nil)
		again, err := fs3.Load()
		if err != nil || again.Seq != 4 || len(again.Apps) != 0 {
			t.Fatalf("compact every %d: after second restart seq %d apps %d err %v", compactEvery, again.Seq, len(again.Apps), err)
		}
		fs3.Close()
	}
}

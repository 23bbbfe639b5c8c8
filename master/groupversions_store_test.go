package master

import (
	"context"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// groupVersionChanges keep two versions of group /g, one forgotten again,
// and an app definition kept for them after its app went.
func groupVersionChanges() []events.Change {
	t1, t2 := eventstest.T0.Add(time.Second), eventstest.T0.Add(2*time.Second)
	a1, a2 := eventstest.App("/g/a", 3000), eventstest.App("/g/a", 3001)
	a1.Version, a2.Version = t1, t2
	gv := func(v time.Time, app events.App) events.GroupVersion {
		return events.GroupVersion{ID: "/g", Version: v, Record: true, Dependencies: []string{"/db"},
			Apps: []events.Ref{{ID: app.ID, Version: app.Version}}}
	}
	return []events.Change{
		events.PutApp(a1), events.PutAppVersion(a1), events.PutGroupVersion(gv(t1, a1)),
		events.PutGroup(events.Group{ID: "/g", Version: t1, Versions: []time.Time{t1}}),
		events.PutApp(a2), events.PutAppVersion(a2), events.PutGroupVersion(gv(t2, a2)),
		events.PutGroupVersion(events.GroupVersion{ID: "/", Version: t2, Groups: []events.Ref{{ID: "/g", Version: t2}}}),
		events.KeepApp(a1), events.DeleteAppVersion("/g/a", t1),
		events.KeepApp(a2), events.ReleaseApp("/g/a", t2),
		events.PutGroupVersion(events.GroupVersion{ID: "/gone", Version: t1}), events.DeleteGroupVersion("/gone", t1),
	}
}

// Group versions and the definitions kept for them are state: every store
// gives them back as they were, the local one through its snapshot too.
func TestGroupVersionsAreStored(t *testing.T) {
	changes := groupVersionChanges()
	want := events.NewState()
	stampAll(want, 1, changes)
	if len(want.GroupVersions["/g"]) != 2 || len(want.KeptApps["/g/a"]) != 1 || want.GroupVersions["/gone"] != nil {
		t.Fatalf("applied: group versions %v, kept %v", want.GroupVersions, want.KeptApps)
	}
	check := func(t *testing.T, got *events.State) {
		t.Helper()
		if err := eventstest.Equal(got.Normalize(), want); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("FileStore", func(t *testing.T) {
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
		if _, err := fs.AppendAll(stampAll(st, 1, changes)); err != nil {
			t.Fatal(err)
		}
		if err := fs.compact(context.Background()); err != nil {
			t.Fatal(err)
		}
		fs.Close()
		check(t, reload(t, dir))
	})
	t.Run("ZKStore", func(t *testing.T) {
		root := zkRoot(t)
		s := newTestZKStore(t, root, "m1")
		st := load(t, s)
		if _, err := s.AppendAll(stampAll(st, 1, changes)); err != nil {
			t.Fatal(err)
		}
		check(t, load(t, newTestZKStore(t, root, "m2")))
	})
	t.Run("ZKStoreLaidOutBefore", func(t *testing.T) {
		// A layout made before group versions has no folders for them:
		// the store makes them.
		root := zkRoot(t)
		old := newTestZKStore(t, root, "m0")
		load(t, old)
		conn := zkConnect(t, testZK(t).Servers)
		for _, d := range laterRecordDirs {
			if err := conn.Delete(old.path("state", d), -1); err != nil {
				t.Fatal(err)
			}
		}
		s := newTestZKStore(t, root, "m1")
		st := load(t, s)
		if _, err := s.AppendAll(stampAll(st, 1, changes)); err != nil {
			t.Fatal(err)
		}
		check(t, load(t, newTestZKStore(t, root, "m2")))
	})
}

// What NATS carries does not grow with group versions: their events go
// out as a name, and snapshots leave them out, as they leave out app
// histories.
func TestGroupVersionsStayOffNATS(t *testing.T) {
	st := events.NewState()
	evs := stampAll(st, 1, groupVersionChanges())
	for _, e := range evs {
		var held int
		if e.GroupVersion != nil {
			held = len(e.GroupVersion.Apps) + len(e.GroupVersion.Groups)
		}
		r := e.Redacted()
		switch e.Type {
		case events.GroupVersionAdded:
			if len(r.GroupVersion.Apps)+len(r.GroupVersion.Groups) != 0 || r.GroupVersion.ID == "" || r.GroupVersion.Version.IsZero() {
				t.Errorf("%s on NATS: %+v", e.Type, r.GroupVersion)
			}
			if len(e.GroupVersion.Apps)+len(e.GroupVersion.Groups) != held {
				t.Errorf("redacting %s changed the leader's event", e.Type)
			}
		case events.AppKept:
			if r.App.Cmd != "" || r.App.ID == "" {
				t.Errorf("%s on NATS: %+v", e.Type, r.App)
			}
		}
		if err := r.Validate(); err != nil {
			t.Errorf("%s on NATS does not decode: %v", e.Type, err)
		}
	}
	if r := st.Redacted(); r.GroupVersions != nil || r.KeptApps != nil {
		t.Errorf("a snapshot on NATS carries group versions %v, kept apps %v", r.GroupVersions, r.KeptApps)
	}
	f := events.NewState()
	f.DropVersions()
	for _, e := range evs {
		if err := f.Apply(e.Redacted()); err != nil {
			t.Fatal(err)
		}
	}
	if f.GroupVersions != nil || f.KeptApps != nil {
		t.Errorf("a follower keeps group versions %v, kept apps %v", f.GroupVersions, f.KeptApps)
	}
}

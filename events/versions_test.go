package events_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// An app's history keeps its definitions oldest first, one per version;
// forgetting one leaves the others; removing the app forgets them all.
func TestAppVersionsHistory(t *testing.T) {
	s := base(t)
	v := func(n int, instances int) events.App {
		a := eventstest.App("/web", instances)
		a.Version = eventstest.T0.Add(time.Duration(n) * time.Second)
		return a
	}
	apply(t, s, events.PutAppVersion(v(2, 2)))
	apply(t, s, events.PutAppVersion(v(1, 1)))
	apply(t, s, events.PutAppVersion(v(3, 3)))
	apply(t, s, events.PutAppVersion(v(2, 5))) // the same version again: replaced
	got := func() []int {
		var out []int
		for _, a := range s.AppVersions["/web"] {
			out = append(out, a.Instances)
		}
		return out
	}
	if g := got(); len(g) != 3 || g[0] != 1 || g[1] != 5 || g[2] != 3 {
		t.Fatalf("history by instances = %v, want [1 5 3]", g)
	}
	if a := s.AppVersions["/web"][1]; !a.Version.Equal(v(2, 0).Version) || a.Instances != 5 {
		t.Errorf("second kept definition: version %v, %d instances; want the replaced version 2 with 5", a.Version, a.Instances)
	}
	clone := s.Clone()
	apply(t, s, events.DeleteAppVersion("/web", v(1, 0).Version))
	if g := got(); len(g) != 2 || g[0] != 5 {
		t.Errorf("after forgetting the oldest: %v, want [5 3]", g)
	}
	if n := len(clone.AppVersions["/web"]); n != 3 {
		t.Errorf("a clone's history changed with the original's: %d versions, want 3", n)
	}
	// What NATS carries has no history, and a follower keeps none.
	b, err := json.Marshal(s.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]json.RawMessage
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if _, ok := back["appVersions"]; ok {
		t.Errorf("a redacted state carries the app versions")
	}
	f := s.Clone()
	f.DropVersions()
	apply(t, f, events.PutAppVersion(v(9, 9)))
	if len(f.AppVersions) != 0 {
		t.Errorf("a follower kept versions: %v", f.AppVersions)
	}
	apply(t, s, events.DeleteApp("/web"))
	if _, ok := s.AppVersions["/web"]; ok {
		t.Errorf("the history outlived its app")
	}
}

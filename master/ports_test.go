package master

import (
	"errors"
	"io"
	"log/slog"
	"reflect"
	"testing"

	"github.com/atollhq/atoll/events/eventstest"
)

// Service ports go to the lowest free port, as the apps stand now: a
// deleted app's port and the port of an app whose store write failed are
// free again for the next app.
func TestServicePortsFreedByDeleteAndFailedWrite(t *testing.T) {
	store := &gatedStore{}
	m, err := New(Config{NC: eventstest.Connect(t, eventstest.StartNATS(t)), Store: store,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	establishForTest(t, m)
	create := func(id string) ([]int, error) {
		app, err := appForCreate([]byte(`{"id": "`+id+`", "cmd": "sleep 1", "instances": 0,
			"portDefinitions": [{"port": 0}, {"port": 0}]}`), testLimits)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := m.CreateApp(app)
		return ch.App.ServicePorts(), err
	}
	mustCreate := func(id string, want ...int) {
		t.Helper()
		got, err := create(id)
		if err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s got service ports %v, want %v", id, got, want)
		}
	}
	mustCreate("/a", 10000, 10001)
	mustCreate("/b", 10002, 10003)
	if _, err := m.DeleteApp("/a", true); err != nil {
		t.Fatal(err)
	}
	mustCreate("/c", 10000, 10001)

	diskFull := errors.New("no space left on device")
	verdict, entered := make(chan error, 1), make(chan struct{})
	store.mu.Lock()
	store.gate, store.entered = verdict, entered
	store.mu.Unlock()
	verdict <- diskFull
	if _, err := create("/failed"); !errors.Is(err, diskFull) {
		t.Fatalf("create on a failing store: err %v, want the store's error", err)
	}
	mustCreate("/d", 10004, 10005)
}

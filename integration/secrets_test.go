package integration

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
)

// An app's env reaches the one task that runs it, and nobody who only
// follows NATS: events and snapshots carry the app without it (DESIGN.md
// §10, "apps without env values").
func TestEnvReachesOnlyTheTask(t *testing.T) {
	const secret = "s3cret-db-password"
	c := startCluster(t, clusterOptions{agents: 1})

	// An observer's view of NATS: every event, then a snapshot.
	observer := c.nats.connect(natsauth.RoleObserver, "observer")
	var mu sync.Mutex
	var seen [][]byte
	sub, err := observer.Subscribe(events.Subjects{}.AllEvents(), func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, m.Data)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := observer.Flush(); err != nil {
		t.Fatal(err)
	}

	app := echoApp("/it/secret", 1)
	app["env"] = map[string]string{"DB_PASSWORD": secret}
	c.mustDo("POST", "/v2/apps", app, 201, nil)
	ts := c.waitRunning("/it/secret", 1, 30*time.Second)

	// The task got its env through the launch request.
	pids := taskPIDs(c.dir, "/it/secret")
	if len(pids) != 1 {
		t.Fatalf("%d task processes, want 1", len(pids))
	}
	if got := processEnv(pids[0])["DB_PASSWORD"]; got != secret {
		t.Errorf("task %s has DB_PASSWORD=%q, want the app's", ts[0].ID, got)
	}

	// The observer saw the app and its running task, and no env.
	c.waitFor(10*time.Second, "the app's events and a sync tick after the task runs", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		app, running, tick := false, false, false
		for _, data := range seen {
			app = app || bytes.Contains(data, []byte(`"app_updated"`)) && bytes.Contains(data, []byte(`"/it/secret"`))
			running = running || bytes.Contains(data, []byte(`"TASK_RUNNING"`))
			tick = tick || running && bytes.Contains(data, []byte(`"type":"sync"`))
		}
		return app && tick, fmt.Sprintf("%d messages: app %v, running %v, tick %v", len(seen), app, running, tick)
	})
	mu.Lock()
	for _, data := range seen {
		if bytes.Contains(data, []byte(secret)) || bytes.Contains(data, []byte("DB_PASSWORD")) {
			t.Errorf("event on NATS with the app's env: %s", data)
		}
	}
	mu.Unlock()

	reply, err := observer.Request(events.Subjects{}.Snapshot(), nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(reply.Data))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"/it/secret"`)) {
		t.Fatalf("snapshot without the app: %.500s", raw)
	}
	if bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, []byte("DB_PASSWORD")) {
		t.Errorf("snapshot on NATS with the app's env: %s", raw)
	}

	// The API, for those it lets read, still shows it.
	var view struct {
		App struct {
			Env map[string]string `json:"env"`
		} `json:"app"`
	}
	c.mustDo("GET", "/v2/apps/it/secret", nil, 200, &view)
	if view.App.Env["DB_PASSWORD"] != secret {
		t.Errorf("GET /v2/apps/it/secret env %v", view.App.Env)
	}
}

package lbsync

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// fakeMarathon serves /v2/apps?embed=apps.tasks (Marathon's shape, from its
// API docs) and a /v2/events stream the test writes events to.
type fakeMarathon struct {
	mu      sync.Mutex
	apps    string
	fetches atomic.Int32
	send    chan string
}

func (f *fakeMarathon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v2/apps":
		f.fetches.Add(1)
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, f.apps)
	case "/v2/events":
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		fmt.Fprint(w, "event: event_stream_attached\ndata: {\"remoteAddress\":\"127.0.0.1\",\"eventType\":\"event_stream_attached\"}\n\n")
		fl.Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-f.send:
				fmt.Fprintf(w, "event: %s\ndata: {\"eventType\":%q}\n\n", ev, ev)
				fl.Flush()
			}
		}
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeMarathon) setApps(s string) {
	f.mu.Lock()
	f.apps = s
	f.mu.Unlock()
}

const marathonApps = `{"apps":[{"id":"/web","cmd":"python3 -m http.server $PORT0","instances":%d,
 "portDefinitions":[{"port":10001,"protocol":"tcp","name":"http","labels":{}}],
 "labels":{"HAPROXY_GROUP":"external"},
 "healthChecks":[{"protocol":"HTTP","path":"/","portIndex":0,"gracePeriodSeconds":5,"intervalSeconds":10,"timeoutSeconds":10,"maxConsecutiveFailures":3}],
 "version":"2016-02-02T12:00:00.000Z","tasksRunning":%[1]d,
 "tasks":[%s]}]}`

func marathonTask(i int, alive bool) string {
	return fmt.Sprintf(`{"id":"web.%d","slaveId":"S%d","host":"agent-%d","state":"TASK_RUNNING",
 "startedAt":"2016-02-02T12:00:01.000Z","stagedAt":"2016-02-02T12:00:00.000Z","ports":[3100%d],
 "ipAddresses":[{"ipAddress":"127.0.0.%d","protocol":"IPv4"}],"version":"2016-02-02T12:00:00.000Z",
 "appId":"/web","healthCheckResults":[{"alive":%t,"consecutiveFailures":0,"firstSuccess":null,"lastFailure":null,"lastSuccess":null,"taskId":"web.%[1]d"}]}`, i, i, i, i, i+2, alive, i)
}

func TestMarathonSourceRefetchesOnEventsAndCoalesces(t *testing.T) {
	f := &fakeMarathon{send: make(chan string, 100)}
	f.setApps(fmt.Sprintf(marathonApps, 1, marathonTask(1, true)))
	srv := httptest.NewServer(f)
	defer srv.Close()

	states := make(chan *events.State, 100)
	ctx, cancel := context.WithCancel(context.Background())
	src := &MarathonSource{URL: srv.URL, MinInterval: 50 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, func(s *events.State) { states <- s }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	next := func(what string, ok func(*events.State) bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case s := <-states:
				if ok(s) {
					return
				}
			case <-deadline:
				t.Fatalf("no state with %s", what)
			}
		}
	}
	next("the first task", func(s *events.State) bool {
		task, ok := s.Tasks["web.1"]
		ag := s.Agents["S1"]
		return ok && task.State == events.TaskRunning && task.Healthy != nil && *task.Healthy &&
			ag.IP == "127.0.0.3" && ag.State == events.AgentActive && s.Apps["/web"].PortDefinitions[0].Port == 10001
	})

	// A burst of events brings the new state with a handful of fetches.
	f.setApps(fmt.Sprintf(marathonApps, 2, marathonTask(1, true)+","+marathonTask(2, false)))
	before := f.fetches.Load()
	for range 50 {
		f.send <- "status_update_event"
	}
	next("the second task, unhealthy", func(s *events.State) bool {
		task, ok := s.Tasks["web.2"]
		return ok && task.Healthy != nil && !*task.Healthy
	})
	if n := f.fetches.Load() - before; n > 6 {
		t.Fatalf("%d fetches for 51 events, want them coalesced", n)
	}
}

func TestStateFromMarathonOldTasks(t *testing.T) {
	started := time.Date(2016, 2, 2, 12, 0, 1, 0, time.UTC)
	st := StateFromMarathon([]marathonApp{{
		App: events.App{ID: "/old", HealthChecks: []events.HealthCheck{{Protocol: "TCP"}}},
		Tasks: []events.Task{
			{ID: "old.1", Host: "h1", StartedAt: &started, Ports: []int{31000}},
			{ID: "old.2", Host: "h1", Ports: []int{31001}},
		},
	}})
	one, two := st.Tasks["old.1"], st.Tasks["old.2"]
	if one.State != events.TaskRunning || two.State != "" {
		t.Fatalf("states %q %q: a started task without state runs, an unstarted one does not", one.State, two.State)
	}
	if one.AppID != "/old" || one.AgentID != "h1" || st.Agents["h1"].IP != "h1" {
		t.Fatalf("task %+v, agent %+v: app id, agent and address come from the app and host", one, st.Agents["h1"])
	}
	if one.Healthy == nil || *one.Healthy {
		t.Fatalf("a task with health checks and no results is not healthy, got %v", one.Healthy)
	}
}

// Marathon's JSON of a bridged app decodes into its container and
// networks, and its task's agent is its host, not its container address:
// marathon-lb's backend for container/bridge is the task's host and host
// port.
func TestStateFromMarathonBridged(t *testing.T) {
	var body struct {
		Apps []marathonApp `json:"apps"`
	}
	if err := json.Unmarshal([]byte(`{"apps":[{"id":"/echo","labels":{"HAPROXY_GROUP":"external"},
		"container":{"type":"DOCKER","docker":{"image":"echo:1"},"portMappings":[{"containerPort":8080,"hostPort":0,"servicePort":10200,"protocol":"tcp"}]},
		"networks":[{"mode":"container/bridge"}],
		"tasks":[{"id":"echo.1","host":"127.0.10.7","state":"TASK_RUNNING","ports":[31005],"ipAddresses":[{"ipAddress":"198.18.0.9","protocol":"IPv4"}]}]}]}`), &body); err != nil {
		t.Fatal(err)
	}
	st := StateFromMarathon(body.Apps)
	if ip := st.Agents["127.0.10.7"].IP; ip != "127.0.10.7" {
		t.Fatalf("agent address %q, want the task's host", ip)
	}
	r := mustRender(t, nil, st, Config{})
	if !strings.Contains(r.Config, "bind *:10200") || !strings.Contains(r.Config, "127.0.10.7:31005") {
		t.Fatalf("config lacks the service port or the host:hostPort backend:\n%s", r.Config)
	}
}

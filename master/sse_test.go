package master

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/natsauth"
)

// sseMsg is one event as a client reads it off the stream.
type sseMsg struct {
	id, typ, data string
}

// sseStream is a test client of /v2/events.
type sseStream struct {
	resp  *http.Response
	msgs  chan sseMsg
	pings chan struct{}
	done  chan struct{} // closed when the stream ends
}

func openSSE(t *testing.T, url string, lastID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, resp.Header)
	}
	s := &sseStream{resp: resp, msgs: make(chan sseMsg, 10000), pings: make(chan struct{}, 100), done: make(chan struct{})}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var m sseMsg
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m.typ != "" || m.data != "" {
					s.msgs <- m
				}
				m = sseMsg{}
			case strings.HasPrefix(line, ":"):
				select {
				case s.pings <- struct{}{}:
				default:
				}
			case strings.HasPrefix(line, "id: "):
				m.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				m.typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				if m.data != "" {
					m.data += "\n" // would break Marathon's one-line rule
				}
				m.data += strings.TrimPrefix(line, "data: ")
			default:
				m.typ = "BAD LINE " + line
			}
		}
	}()
	return s
}

func (s *sseStream) next(t *testing.T) sseMsg {
	t.Helper()
	select {
	case m := <-s.msgs:
		if strings.Contains(m.data, "\n") || strings.HasPrefix(m.typ, "BAD") {
			t.Fatalf("malformed event %+v", m)
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return sseMsg{}
}

// until reads events until one of type typ, and returns all read.
func (s *sseStream) until(t *testing.T, typ string) []sseMsg {
	t.Helper()
	var out []sseMsg
	for {
		m := s.next(t)
		out = append(out, m)
		if m.typ == typ {
			return out
		}
	}
}

func (s *sseStream) quiet(t *testing.T) {
	t.Helper()
	select {
	case m := <-s.msgs:
		t.Fatalf("unexpected event %+v", m)
	case <-time.After(100 * time.Millisecond):
	}
}

func decode(t *testing.T, m sseMsg) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(m.data), &v); err != nil {
		t.Fatalf("%s data %q: %v", m.typ, m.data, err)
	}
	if v["eventType"] != m.typ {
		t.Fatalf("event %s has eventType %v", m.typ, v["eventType"])
	}
	if ts, _ := v["timestamp"].(string); !marathonTime.MatchString(ts) {
		t.Fatalf("event %s timestamp %q", m.typ, ts)
	}
	return v
}

// sseMaster is a leading master with an agent, served over httptest.
func sseMaster(t *testing.T) (*Master, *httptest.Server) {
	t.Helper()
	m, _ := leadingMaster(t)
	addAgent(t, m, "h1", "127.0.0.9")
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return m, srv
}

// postApp creates an app as POST /v2/apps from 127.0.0.1 does: with its
// origin, so that the event stream has its api_post_event.
func postApp(t *testing.T, m *Master, body string) events.App {
	t.Helper()
	app, err := appForCreate([]byte(body), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := m.CreateAppFor(app, &events.Origin{ClientIP: "127.0.0.1", URI: "/v2/apps"})
	if err != nil {
		t.Fatal(err)
	}
	return ch.App
}

// stagedTask launches the app's tasks and returns one.
func stagedTask(t *testing.T, m *Master, appID string) events.Task {
	t.Helper()
	reconcile(t, m)
	staged := tasksIn(m, appID, events.TaskStaging)
	if len(staged) == 0 {
		t.Fatalf("no task of %s staged", appID)
	}
	return staged[0]
}

func TestEventStream(t *testing.T) {
	m, srv := sseMaster(t)
	s := openSSE(t, srv.URL+"/v2/events", "")

	first := s.next(t)
	if first.typ != "event_stream_attached" || first.id != "" {
		t.Fatalf("first event %+v, want event_stream_attached without id", first)
	}
	if ra := decode(t, first)["remoteAddress"]; ra != "127.0.0.1" {
		t.Fatalf("remoteAddress %v", ra)
	}

	postApp(t, m, `{"id": "/web", "cmd": "sleep 1000", "instances": 1, "labels": {"HAPROXY_GROUP": "external"}}`)
	post := s.next(t)
	if post.typ != "api_post_event" {
		t.Fatalf("got %+v, want api_post_event", post)
	}
	v := decode(t, post)
	if at(t, v, "uri") != "/v2/apps" || at(t, v, "appDefinition", "id") != "/web" ||
		at(t, v, "appDefinition", "labels", "HAPROXY_GROUP") != "external" {
		t.Fatalf("api_post_event %s", post.data)
	}
	// Marathon's GroupManager tells of every change it accepts, under the
	// group it was made in: the root for /web.
	changed := s.next(t)
	if changed.typ != "group_change_success" || decode(t, changed)["groupId"] != "/" ||
		!marathonTime.MatchString(decode(t, changed)["version"].(string)) {
		t.Fatalf("got %+v, want group_change_success for /", changed)
	}
	info := s.next(t)
	if info.typ != "deployment_info" || at(t, decode(t, info), "plan", "steps", 0, "actions", 0, "app") != "/web" {
		t.Fatalf("got %+v, want deployment_info for /web", info)
	}

	task := stagedTask(t, m, "/web")
	staging := s.next(t)
	if staging.typ != "status_update_event" || decode(t, staging)["taskStatus"] != "TASK_STAGING" {
		t.Fatalf("got %+v, want TASK_STAGING", staging)
	}
	// Marathon 1.4's instance events follow each status update.
	wantInstance := func(condition string) {
		t.Helper()
		ic := s.next(t)
		if v := decode(t, ic); ic.typ != "instance_changed_event" || v["condition"] != condition || v["instanceId"] != task.ID || v["runSpecId"] != "/web" {
			t.Fatalf("got %+v, want instance_changed_event %s", ic, condition)
		}
	}
	wantInstance("Created")
	setStatus(t, m, task.ID, events.TaskRunning)
	running := s.next(t)
	rv := decode(t, running)
	if running.typ != "status_update_event" || rv["taskStatus"] != "TASK_RUNNING" || rv["taskId"] != task.ID ||
		rv["appId"] != "/web" || rv["host"] != "h1" || rv["message"] != "test" {
		t.Fatalf("got %+v, want TASK_RUNNING of %s", running, task.ID)
	}
	wantInstance("Running")

	// Every event from a commit carries epoch-seq, rising.
	var last uint64
	for _, msg := range []sseMsg{post, info, staging, running} {
		epoch, seq, ok := parseSSEID(msg.id)
		if !ok || epoch != m.epoch || seq <= last {
			t.Fatalf("%s: id %q after seq %d", msg.typ, msg.id, last)
		}
		last = seq
	}
	if running.id != sseID(m.epoch, seq(m)) { // its instance event shares its id
		t.Fatalf("last id %s, state at %d", running.id, seq(m))
	}

	// The deployment ends once the app runs: step success, then success.
	reconcile(t, m)
	got := s.until(t, "deployment_success")
	if len(got) != 2 || got[0].typ != "deployment_step_success" {
		t.Fatalf("deployment end: %+v", got)
	}

	// Health changes are told apart from state changes.
	healthy := true
	m.mu.Lock()
	err := m.commitLocked(m.taskStatusLocked(m.state.Tasks[task.ID], events.TaskRunning, "test", &healthy, m.cfg.Now())...)
	m.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	h := s.next(t)
	if hv := decode(t, h); h.typ != "health_status_changed_event" || hv["alive"] != true || hv["instanceId"] != task.ID {
		t.Fatalf("got %+v, want health_status_changed_event alive", h)
	}
	ih := s.next(t)
	if iv := decode(t, ih); ih.typ != "instance_health_changed_event" || iv["healthy"] != true || iv["instanceId"] != task.ID {
		t.Fatalf("got %+v, want instance_health_changed_event healthy", ih)
	}

	if _, err := m.DeleteApp("/web", false); err != nil {
		t.Fatal(err)
	}
	got = s.until(t, "app_terminated_event")
	if v := decode(t, got[len(got)-1]); v["appId"] != "/web" {
		t.Fatalf("app_terminated_event %v", v)
	}
}

func TestEventStreamFilter(t *testing.T) {
	m, srv := sseMaster(t)
	s := openSSE(t, srv.URL+"/v2/events?event_type=status_update_event&event_type=app_terminated_event", "")
	all := openSSE(t, srv.URL+"/v2/events", "")
	all.next(t) // its own attached
	createApp(t, m, `{"id": "/web", "cmd": "sleep 1000", "instances": 1}`)
	stagedTask(t, m, "/web")
	all.until(t, "instance_changed_event")
	if got := s.next(t); got.typ != "status_update_event" {
		t.Fatalf("filtered stream got %+v first", got)
	}
	s.quiet(t)

	// A second client attaching is told to everyone who asked for it.
	openSSE(t, srv.URL+"/v2/events", "")
	if got := all.next(t); got.typ != "event_stream_attached" {
		t.Fatalf("got %+v, want another client's event_stream_attached", got)
	}
	s.quiet(t)
}

func TestEventStreamReplay(t *testing.T) {
	m, srv := sseMaster(t)
	live := openSSE(t, srv.URL+"/v2/events", "")
	live.next(t)
	createApp(t, m, `{"id": "/a", "cmd": "sleep 1000", "instances": 2}`)
	seen := live.until(t, "deployment_info")
	resumeAt := seen[len(seen)-1].id

	// Missed while away: more commits.
	reconcile(t, m)
	for _, task := range tasksIn(m, "/a", events.TaskStaging) {
		setStatus(t, m, task.ID, events.TaskRunning)
	}
	createApp(t, m, `{"id": "/b", "cmd": "sleep 1000", "instances": 1}`)
	var want []sseMsg
	want = append(want, live.until(t, "deployment_info")...)

	again := openSSE(t, srv.URL+"/v2/events", resumeAt)
	if a := again.next(t); a.typ != "event_stream_attached" {
		t.Fatalf("first after reconnect %+v", a)
	}
	for i, w := range want {
		if got := again.next(t); got != w {
			t.Fatalf("replayed event %d: %+v, want %+v", i, got, w)
		}
	}
	// Then live, in order.
	setStatus(t, m, tasksIn(m, "/a", events.TaskRunning)[0].ID, events.TaskFailed)
	w := live.until(t, "instance_changed_event")
	for _, want := range w[len(w)-2:] { // the status update and its instance event
		if got := again.next(t); got != want {
			t.Fatalf("live after replay: %+v, want %+v", got, want)
		}
	}
	again.quiet(t)

	// Resuming at the newest id replays nothing.
	atHead := openSSE(t, srv.URL+"/v2/events", w[len(w)-1].id)
	atHead.next(t)
	atHead.quiet(t)
}

func TestEventStreamResync(t *testing.T) {
	m, srv := sseMaster(t)
	m.sse.mu.Lock()
	m.sse.ringSize = 3
	m.sse.mu.Unlock()
	live := openSSE(t, srv.URL+"/v2/events", "")
	live.next(t)
	postApp(t, m, `{"id": "/a", "cmd": "sleep 1000", "instances": 3}`)
	old := live.until(t, "api_post_event")[0].id
	reconcile(t, m) // 3 launches: the ring of 3 forgets the app's creation
	live.until(t, "status_update_event")
	head := sseID(m.epoch, seq(m))

	for _, id := range []string{old, "99-1", "garbage", sseID(m.epoch, seq(m)+5)} {
		s := openSSE(t, srv.URL+"/v2/events?event_type=status_update_event", id)
		r := s.next(t)
		v := decode(t, r)
		if r.typ != "resync" || r.id != head || v["snapshot"] != "/v2/apps?embed=apps.tasks" || v["lastEventId"] != id {
			t.Fatalf("Last-Event-ID %s: got %+v, want resync with id %s", id, r, head)
		}
		s.quiet(t)
	}
}

func TestSlowClientDoesNotBlockCommits(t *testing.T) {
	m, srv := sseMaster(t)
	hub := m.sse
	hub.mu.Lock()
	hub.clientBuffer = 2
	hub.mu.Unlock()
	// A client that never reads: nothing takes from its channel.
	slow, _ := hub.attach("10.0.0.1", nil, "")
	hub.mu.Lock()
	hub.clientBuffer = sseClientBuffer
	hub.mu.Unlock()
	fast := openSSE(t, srv.URL+"/v2/events", "")
	fast.next(t)

	done := make(chan error, 1)
	go func() {
		for i := 0; i < 50; i++ {
			app, err := appForCreate([]byte(fmt.Sprintf(`{"id": "/app%d", "cmd": "sleep 1", "instances": 0}`, i)), testLimits)
			if err == nil {
				_, err = m.CreateAppFor(app, &events.Origin{ClientIP: "127.0.0.1", URI: "/v2/apps"})
			}
			if err != nil {
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
	case <-time.After(5 * time.Second):
		t.Fatal("commits blocked by a slow SSE client")
	}
	select {
	case <-slow.dropped:
	default:
		t.Fatal("slow client still attached")
	}
	// The fast one got everything.
	for i := 0; i < 50; i++ {
		post := fast.until(t, "api_post_event")
		if v := decode(t, post[len(post)-1]); at(t, v, "appDefinition", "id") != fmt.Sprintf("/app%d", i) {
			t.Fatalf("fast client: %v", v)
		}
	}
}

func TestEventStreamEnds(t *testing.T) {
	m, srv := sseMaster(t)
	hub := m.sse
	hub.mu.Lock()
	hub.heartbeat, hub.leaderCheck = 20*time.Millisecond, 20*time.Millisecond
	hub.mu.Unlock()
	s := openSSE(t, srv.URL+"/v2/events", "")
	s.next(t)
	select {
	case <-s.pings:
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat")
	}
	m.revoke() // what the master does when it stops leading or stops
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after the master stopped leading")
	}
	deadline := time.Now().Add(5 * time.Second)
	for hub.clientCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("client still registered")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sseAllowed lists where atoll's events knowingly differ from Marathon's
// examples (see testdata/sse/README.md): fields Marathon 0.x had that
// atoll's app definition does not.
var sseAllowed = map[string]string{
	"appDefinition.container":    "absent",
	"appDefinition.dependencies": "absent",
	"appDefinition.executor":     "absent",
	"appDefinition.storeUrls":    "absent",
	"appDefinition.uris":         "absent",
}

func TestEventJSONMatchesMarathon(t *testing.T) {
	m, srv := sseMaster(t)
	s := openSSE(t, srv.URL+"/v2/events", "")
	got := map[string]sseMsg{}
	keep := func(ms ...sseMsg) {
		for _, msg := range ms {
			if _, ok := got[msg.typ]; !ok {
				got[msg.typ] = msg
			}
		}
	}
	keep(s.next(t))
	// Through the API, so api_post_event names the client.
	res := call(t, m.Handler(), "POST", "/v2/apps", `{"id": "/web", "cmd": "sleep 1000", "instances": 1, "user": "nobody", "portDefinitions": [{"port": 10001}],
		"healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0}]}`)
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	keep(s.until(t, "deployment_info")...)
	if post := decode(t, got["api_post_event"]); post["clientIp"] != "192.0.2.1" || post["uri"] != "/v2/apps" {
		t.Errorf("api_post_event clientIp %v uri %v, want the caller's address and the path it called", post["clientIp"], post["uri"])
	}
	task := stagedTask(t, m, "/web")
	keep(s.until(t, "status_update_event")...)
	healthy := true
	m.mu.Lock()
	err := m.commitLocked(m.taskStatusLocked(m.state.Tasks[task.ID], events.TaskRunning, "", &healthy, m.cfg.Now())...)
	m.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	keep(s.until(t, "health_status_changed_event")...)
	reconcile(t, m)
	keep(s.until(t, "deployment_success")...)
	other, err := appForCreate([]byte(`{"id": "/other", "cmd": "sleep 1000", "instances": 1}`), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := m.CreateApp(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CancelDeployment(ch.Deployment.ID, false); err != nil {
		t.Fatal(err)
	}
	// Rolling back the creation ends it (deployment_failed) and removes
	// the app.
	keep(s.until(t, "deployment_failed")...)
	keep(s.until(t, "app_terminated_event")...)

	files, err := filepath.Glob("testdata/sse/*.json")
	if err != nil || len(files) < 12 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		typ := strings.TrimSuffix(filepath.Base(f), ".json")
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		msg, ok := got[typ]
		if !ok {
			t.Errorf("%s: no such event seen", typ)
			continue
		}
		sameShape(t, typ, "", want, decode(t, msg))
	}
}

// sameShape checks that have has every field of want with the same JSON
// type; null in want matches anything.
func sameShape(t *testing.T, typ, path string, want, have any) {
	t.Helper()
	if want == nil {
		return
	}
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			t.Errorf("%s %s: %T, want an object", typ, path, have)
			return
		}
		for k, wv := range w {
			p := strings.TrimPrefix(path+"."+k, ".")
			hv, ok := h[k]
			switch allowed := sseAllowed[p]; {
			case !ok && allowed == "absent":
				continue
			case !ok:
				t.Errorf("%s: no field %s", typ, p)
				continue
			case hv == nil && allowed == "null":
				continue
			}
			sameShape(t, typ, p, wv, hv)
		}
	case []any:
		h, ok := have.([]any)
		if !ok {
			t.Errorf("%s %s: %T, want an array", typ, path, have)
			return
		}
		if len(w) > 0 && len(h) > 0 {
			sameShape(t, typ, path+"[0]", w[0], h[0])
		}
	default:
		if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", have) {
			t.Errorf("%s %s: %T (%v), want %T like %v", typ, path, have, have, want, want)
		}
	}
}

func TestEventStreamEndsWhenMasterStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{
		NC: eventstest.Connect(t, eventstest.StartNATS(t)), Store: &MemStore{}, Listener: ln,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- m.Run(ctx) }()
	url := "http://" + ln.Addr().String()
	deadline := time.Now().Add(5 * time.Second)
	for !m.Leading() {
		if time.Now().After(deadline) {
			t.Fatal("master does not lead")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := openSSE(t, url+"/v2/events", "")
	s.next(t)

	start := time.Now()
	cancel()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after the master stopped")
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("stopping took %s: the stream held up the server's shutdown", d)
	}
}

// TestLBReportsReachTheStream: a sidecar's report published on NATS shows
// up on /v2/events as lb_report_event, without an id, and an undecodable
// one does not.
func TestLBReportsReachTheStream(t *testing.T) {
	m, _, ns := leadingMasterOn(t)
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	subscribeForTest(t, m)
	// The filter also keeps event_stream_attached away: the first event
	// read must be the report.
	s := openSSE(t, srv.URL+"/v2/events?event_type=lb_report_event", "")
	// The sidecar of node n1 says it is someone else: the node is the
	// one its credential may publish as.
	sidecar := ns.ConnectAs(t, natsauth.RoleSidecar, "n1")
	for _, data := range []string{
		`not json`,
		`{"node": "forged", "appId": "/bad", "portIndex": 0, "error": "haproxy -c: unknown keyword 'bogus'", "timestamp": "2026-11-23T12:00:00Z"}`,
	} {
		if err := sidecar.Publish(m.cfg.Subjects.LBReport("n1"), []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	got := s.next(t)
	v := decode(t, got)
	if got.typ != "lb_report_event" || got.id != "" || v["eventType"] != "lb_report_event" || v["node"] != "n1" ||
		v["appId"] != "/bad" || v["portIndex"] != float64(0) || v["timestamp"] != "2026-11-23T12:00:00.000Z" {
		t.Fatalf("got %+v", got)
	}
}

// TestAgentChangesReachTheStream: an agent registering and being marked
// gone show up as atoll's agent_update_event, with an id like every
// state event.
func TestAgentChangesReachTheStream(t *testing.T) {
	m, srv := sseMaster(t)
	s := openSSE(t, srv.URL+"/v2/events?event_type=agent_update_event", "")
	id := addAgent(t, m, "h2", "127.0.0.10")
	got := s.next(t)
	v := decode(t, got)
	if got.typ != "agent_update_event" || got.id == "" || v["agentId"] != id || v["hostname"] != "h2" ||
		v["ip"] != "127.0.0.10" || v["state"] != "active" {
		t.Fatalf("on registration: got %+v", got)
	}
	if err := m.markAgentGone(id); err != nil {
		t.Fatal(err)
	}
	got = s.next(t)
	if v := decode(t, got); v["agentId"] != id || v["state"] != "gone" {
		t.Fatalf("on gone: got %+v", got)
	}
}

// Marathon posts api_post_event for calls on /v2/apps alone: an app made
// by a group change, or scaled by the master, has none (marathon-lb and
// other listeners would otherwise see API calls nobody made).
func TestAPIPostEventOnlyForAppsCalls(t *testing.T) {
	m, srv := sseMaster(t)
	s := openSSE(t, srv.URL+"/v2/events", "")
	s.next(t)
	h := m.Handler()
	if res := call(t, h, "POST", "/v2/groups", `{"id": "/g", "apps": [{"id": "a", "cmd": "sleep 1000"}]}`); res.status != 201 {
		t.Fatalf("POST /v2/groups: %d %s", res.status, res.body)
	}
	for _, e := range s.until(t, "deployment_info") {
		if e.typ == "api_post_event" {
			t.Fatalf("a group change posted %s", e.data)
		}
	}
	if res := call(t, h, "PUT", "/v2/apps/g/a?force=true", `{"cmd": "sleep 1000", "instances": 2}`); res.status != 200 {
		t.Fatalf("PUT /v2/apps/g/a: %d %s", res.status, res.body)
	}
	seen := s.until(t, "api_post_event")
	if post := decode(t, seen[len(seen)-1]); post["uri"] != "/v2/apps/g/a" {
		t.Errorf("api_post_event uri %v, want /v2/apps/g/a", post["uri"])
	}
}

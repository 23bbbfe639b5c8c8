package master

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// testClock ticks a millisecond per reading, so versions differ and are
// predictable.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

// newAPI returns a master that leads (its state established, no reconcile
// loop: deployments stay until a test ends them) and its API handler.
func newAPI(t testing.TB, creds string) (*Master, http.Handler) {
	t.Helper()
	m := newUnestablished(t, creds)
	establishForTest(t, m)
	return m, m.Handler()
}

func newUnestablished(t testing.TB, creds string) *Master {
	t.Helper()
	nc := eventstest.Connect(t, eventstest.StartNATS(t))
	clock := &testClock{now: time.Date(2026, 11, 23, 17, 34, 21, 123456789, time.UTC)}
	m, err := New(Config{
		NC: nc, Store: &MemStore{}, HTTPAddr: "127.0.0.1:8080", HTTPCredentials: creds,
		ID: "master-1", Hostname: "m1.test", Now: clock.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// namesItsDeployment checks that a response that started a deployment
// names it in Marathon's Marathon-Deployment-Id header, as its body does.
func namesItsDeployment(t *testing.T, res response) {
	t.Helper()
	body := res.json(t)
	id, _ := body["deploymentId"].(string)
	if id == "" { // POST /v2/apps answers with the app, naming its deployment
		id, _ = at(t, body, "deployments", 0, "id").(string)
	}
	if got := res.header.Get("Marathon-Deployment-Id"); id == "" || got != id {
		t.Errorf("Marathon-Deployment-Id %q, the body names %q", got, id)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body; a test fails on a body that is not JSON.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return v
}

func call(t *testing.T, h http.Handler, method, target, body string, auth ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json") // as every client sends
	}
	if len(auth) == 2 {
		req.SetBasicAuth(auth[0], auth[1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	if ct := res.header.Get("Content-Type"); len(res.body) > 0 && target != "/ping" && ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, target, ct)
	}
	return res
}

// at walks a decoded JSON value: at(v, "app", "tasks", 0, "id").
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %v is not an object", path, v)
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("at %v: no %q in %v", path, k, m)
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("at %v: %v has no element %d", path, v, k)
			}
			v = a[k]
		}
	}
	return v
}

func seq(m *Master) (s uint64) {
	m.View(func(st *events.State) { s = st.Seq })
	return s
}

var marathonTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

const webApp = `{"id":"web","cmd":"sleep 1000","instances":2,"cpus":0.1,"mem":32,"labels":{"HAPROXY_GROUP":"external"}}`

func TestAppLifecycle(t *testing.T) {
	m, h := newAPI(t, "")

	res := call(t, h, "POST", "/v2/apps", webApp)
	if res.status != http.StatusCreated || res.header.Get("Location") != "/v2/apps/web" {
		t.Fatalf("create: %d %v %s", res.status, res.header, res.body)
	}
	namesItsDeployment(t, res)
	app := res.json(t)
	depID := at(t, app, "deployments", 0, "id").(string)
	for path, want := range map[string]any{
		"id": "/web", "cmd": "sleep 1000", "instances": 2.0, "mem": 32.0, "disk": 0.0,
		"tasksRunning": 0.0, "tasksStaged": 0.0, "tasksHealthy": 0.0, "tasksUnhealthy": 0.0,
		"backoffFactor": 1.15, "maxLaunchDelaySeconds": 3600.0, "requirePorts": false,
	} {
		if got := at(t, app, path); got != want {
			t.Errorf("created app %s = %v, want %v", path, got, want)
		}
	}
	if port := at(t, app, "portDefinitions", 0, "port"); port != 10000.0 {
		t.Errorf("service port %v, want 10000 (assigned by the master)", port)
	}
	for _, f := range []string{"constraints", "healthChecks", "tasks", "waiting"} {
		if a, ok := app[f].([]any); !ok || len(a) != 0 {
			t.Errorf("created app %s = %v, want []", f, app[f])
		}
	}
	if env, ok := app["env"].(map[string]any); !ok || len(env) != 0 {
		t.Errorf("env = %v, want {}", app["env"])
	}
	if v := at(t, app, "version").(string); !marathonTime.MatchString(v) {
		t.Errorf("version %q is not Marathon's time format", v)
	}

	res = call(t, h, "POST", "/v2/apps", webApp)
	if res.status != http.StatusConflict || at(t, res.json(t), "message") != "An app with id [/web] already exists." {
		t.Fatalf("create again: %d %s", res.status, res.body)
	}

	// The app, always with its tasks.
	res = call(t, h, "GET", "/v2/apps/web", "")
	if res.status != http.StatusOK {
		t.Fatalf("get: %d %s", res.status, res.body)
	}
	if tasks := at(t, res.json(t), "app", "tasks").([]any); len(tasks) != 0 {
		t.Fatalf("tasks %v", tasks)
	}
	// The list embeds tasks only when asked.
	list := call(t, h, "GET", "/v2/apps", "").json(t)
	if _, ok := at(t, list, "apps", 0).(map[string]any)["tasks"]; ok {
		t.Error("tasks embedded without embed=apps.tasks")
	}
	list = call(t, h, "GET", "/v2/apps?embed=apps.tasks", "").json(t)
	if _, ok := at(t, list, "apps", 0).(map[string]any)["tasks"]; !ok {
		t.Error("no tasks with embed=apps.tasks")
	}

	// The start deployment holds the app until forced.
	res = call(t, h, "PUT", "/v2/apps/web", `{"instances":3}`)
	if res.status != http.StatusConflict || at(t, res.json(t), "deployments", 0, "id") != depID ||
		!strings.Contains(at(t, res.json(t), "message").(string), "locked") {
		t.Fatalf("locked put: %d %s", res.status, res.body)
	}
	res = call(t, h, "PUT", "/v2/apps/web?force=true", `{"instances":3}`)
	namesItsDeployment(t, res)
	if res.status != http.StatusOK || at(t, res.json(t), "deploymentId") == "" ||
		!marathonTime.MatchString(at(t, res.json(t), "version").(string)) {
		t.Fatalf("forced put: %d %s", res.status, res.body)
	}
	app = at(t, call(t, h, "GET", "/v2/apps/web", "").json(t), "app").(map[string]any)
	if app["instances"] != 3.0 || app["cmd"] != "sleep 1000" || at(t, app, "labels", "HAPROXY_GROUP") != "external" {
		t.Fatalf("after partial update: %v", app)
	}

	if res = call(t, h, "POST", "/v2/apps/web/restart", ""); res.status != http.StatusConflict {
		t.Fatalf("locked restart: %d %s", res.status, res.body)
	}
	if res = call(t, h, "POST", "/v2/apps/web/restart?force=true", ""); res.status != http.StatusOK {
		t.Fatalf("restart: %d %s", res.status, res.body)
	}
	namesItsDeployment(t, res)
	// DELETE is forced unless asked not to be (Marathon's default).
	if res = call(t, h, "DELETE", "/v2/apps/web?force=false", ""); res.status != http.StatusConflict {
		t.Fatalf("locked delete: %d %s", res.status, res.body)
	}
	if res = call(t, h, "DELETE", "/v2/apps/web", ""); res.status != http.StatusOK || at(t, res.json(t), "deploymentId") == "" {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	namesItsDeployment(t, res)
	res = call(t, h, "GET", "/v2/apps/web", "")
	if res.status != http.StatusNotFound || at(t, res.json(t), "message") != "App '/web' does not exist" {
		t.Fatalf("get deleted: %d %s", res.status, res.body)
	}

	// PUT creates an app that does not exist yet.
	res = call(t, h, "PUT", "/v2/apps/group/new", `{"cmd":"sleep 1"}`)
	if res.status != http.StatusCreated || res.header.Get("Location") != "/v2/apps/group/new" || at(t, res.json(t), "deploymentId") == "" {
		t.Fatalf("put new: %d %v %s", res.status, res.header, res.body)
	}
	namesItsDeployment(t, res)
	m.View(func(s *events.State) {
		if a := s.Apps["/group/new"]; a.Instances != 1 || a.Mem != 128 || len(a.PortDefinitions) != 1 {
			t.Errorf("created by PUT: %+v", a)
		}
	})
}

func TestBadInputChangesNothing(t *testing.T) {
	m, h := newAPI(t, "")
	if res := call(t, h, "POST", "/v2/apps", webApp); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	var before events.App
	m.View(func(s *events.State) { before = s.Apps["/web"] })
	tests := []struct {
		name, method, target, body string
		status                     int
		path                       string
	}{
		{"invalid json", "POST", "/v2/apps", `{"id":"x",`, 400, "/"},
		{"wrong type", "POST", "/v2/apps", `{"id":"x","cmd":"a b","mem":"lots"}`, 400, "/mem"},
		{"bad id", "POST", "/v2/apps", `{"id":"/Web_1","cmd":"a b"}`, 422, "/id"},
		{"bad constraints", "POST", "/v2/apps", `{"id":"x","cmd":"a b","constraints":[["hostname","NEAR"]]}`, 422, "/constraints(0)"},
		{"no cmd or args", "POST", "/v2/apps", `{"id":"x"}`, 422, "/"},
		{"bad update json", "PUT", "/v2/apps/web?force=true", `{"instances":`, 400, "/"},
		{"bad update", "PUT", "/v2/apps/web?force=true", `{"instances":-1}`, 422, "/instances"},
		{"bad update constraint", "PUT", "/v2/apps/web?force=true", `{"constraints":[["rack","MAX_PER","x"]]}`, 422, "/constraints(0)"},
		{"update of another id", "PUT", "/v2/apps/web?force=true", `{"id":"/other","instances":1}`, 422, "/id"},
		{"bad new app", "PUT", "/v2/apps/fresh", `{"instances":1}`, 422, "/"},
		// Bounds: what agents cannot run, what the operator allows.
		{"id too long for a sandbox folder", "POST", "/v2/apps", `{"id":"/` + strings.Repeat("a", maxAppIDLen) + `","cmd":"a b"}`, 422, "/id"},
		{"id too long, by PUT", "PUT", "/v2/apps/g/" + strings.Repeat("a", maxAppIDLen), `{"cmd":"a b"}`, 422, "/id"},
		{"too many instances", "POST", "/v2/apps", `{"id":"x","cmd":"a b","instances":1001}`, 422, "/instances"},
		{"scale above the limit", "PUT", "/v2/apps/web?force=true", `{"instances":1001}`, 422, "/instances"},
		{"replace above the limit", "PUT", "/v2/apps/web?force=true&partialUpdate=false", `{"cmd":"a b","instances":5000}`, 422, "/instances"},
		{"new app above the limit, by PUT", "PUT", "/v2/apps/fresh", `{"cmd":"a b","instances":1001}`, 422, "/instances"},
		{"env name with =", "POST", "/v2/apps", `{"id":"x","cmd":"a b","env":{"PATH=/tmp:":"x"}}`, 422, "/env(PATH=/tmp:)"},
		{"env name empty", "POST", "/v2/apps", `{"id":"x","cmd":"a b","env":{"":"x"}}`, 422, "/env()"},
		{"env name with NUL", "POST", "/v2/apps", `{"id":"x","cmd":"a b","env":{"A\u0000B":"x"}}`, 422, "/env(A\x00B)"},
		{"env name by PUT", "PUT", "/v2/apps/web?force=true", `{"env":{"A=B":"c"}}`, 422, "/env(A=B)"},
		{"env value with NUL", "POST", "/v2/apps", `{"id":"x","cmd":"a b","env":{"A":"x\u0000y"}}`, 422, "/env/A"},
		{"cmd with NUL", "POST", "/v2/apps", `{"id":"x","cmd":"a\u0000b"}`, 422, "/cmd"},
		{"arg with NUL", "POST", "/v2/apps", `{"id":"x","args":["a","b\u0000"]}`, 422, "/args(1)"},
		{"label with NUL", "POST", "/v2/apps", `{"id":"x","cmd":"a b","labels":{"L":"\u0000"}}`, 422, "/labels/L"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s0 := seq(m)
			res := call(t, h, tt.method, tt.target, tt.body)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d: %s", res.status, tt.status, res.body)
			}
			doc := res.json(t)
			wantMsg := map[int]string{400: "Invalid JSON", 422: "Object is not valid"}[tt.status]
			if doc["message"] != wantMsg {
				t.Fatalf("message %v, want %q", doc["message"], wantMsg)
			}
			found := false
			for _, d := range doc["details"].([]any) {
				found = found || d.(map[string]any)["path"] == tt.path
			}
			if !found {
				t.Fatalf("no detail for %s in %s", tt.path, res.body)
			}
			if seq(m) != s0 {
				t.Fatalf("state changed: seq %d -> %d", s0, seq(m))
			}
		})
	}
	m.View(func(s *events.State) {
		if !reflect.DeepEqual(s.Apps["/web"], before) || len(s.Apps) != 1 {
			t.Fatalf("apps changed: %+v", s.Apps)
		}
	})
}

func TestErrorsAndRouting(t *testing.T) {
	m, h := newAPI(t, "")
	if res := call(t, h, "POST", "/v2/apps", webApp); res.status != http.StatusCreated {
		t.Fatal(res.status)
	}
	tests := []struct {
		method, target string
		status         int
		message        string
	}{
		{"GET", "/v2/apps/nope", 404, "App '/nope' does not exist"},
		{"PUT", "/v2/apps/nope/restart", 405, "Method Not Allowed"},
		{"POST", "/v2/apps/nope/restart", 404, "App '/nope' does not exist"},
		{"DELETE", "/v2/apps/a/b", 404, "App '/a/b' does not exist"},
		{"GET", "/v2/apps/nope/tasks", 404, "App '/nope' does not exist"},
		{"DELETE", "/v2/apps/nope/tasks", 404, "App '/nope' does not exist"},
		{"DELETE", "/v2/apps/web/tasks/web.nope", 404, "Task 'web.nope' does not exist"},
		{"GET", "/v2/apps/web/tasks/web.nope", 405, "Method Not Allowed"},
		{"DELETE", "/v2/deployments/nope", 404, "DeploymentPlan nope does not exist"},
		{"DELETE", "/v2/apps", 405, "Method Not Allowed"},
		{"DELETE", "/v2/info", 405, "Method Not Allowed"},
		{"GET", "/v2/nothing", 404, "URI not found: /v2/nothing"},
	}
	for _, tt := range tests {
		res := call(t, h, tt.method, tt.target, "")
		if res.status != tt.status || res.json(t)["message"] != tt.message {
			t.Errorf("%s %s: %d %s, want %d %q", tt.method, tt.target, res.status, res.body, tt.status, tt.message)
		}
		if tt.status == 405 && res.header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tt.method, tt.target)
		}
	}
	_ = m

	// A master that does not lead and knows no leader has nowhere to
	// send a call (standby_test.go covers standbys that know one).
	h2 := newUnestablished(t, "").Handler()
	if res := call(t, h2, "POST", "/v2/apps", webApp); res.status != http.StatusBadGateway ||
		res.json(t)["message"] != msgNoLeader {
		t.Errorf("create on a standby: %d %s", res.status, res.body)
	}
	if res := call(t, h2, "GET", "/v2/leader", ""); res.status != http.StatusNotFound {
		t.Errorf("leader without one: %d %s", res.status, res.body)
	}
}

// TestBasicAuth: with credentials configured, every call needs them,
// reads included (the apps' env holds secrets), as Marathon's
// --http_credentials; liveness stays open. http_guard_test.go goes
// through every path.
func TestBasicAuth(t *testing.T) {
	m, h := newAPI(t, "admin:s3cret")
	tests := []struct {
		name, method string
		auth         []string
		status       int
	}{
		{"read without auth", "GET", nil, 401},
		{"read with the wrong password", "GET", []string{"admin", "nope"}, 401},
		{"read", "GET", []string{"admin", "s3cret"}, 200},
		{"write without auth", "POST", nil, 401},
		{"wrong password", "POST", []string{"admin", "nope"}, 401},
		{"wrong user", "POST", []string{"root", "s3cret"}, 401},
		{"right", "POST", []string{"admin", "s3cret"}, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s0 := seq(m)
			body := ""
			if tt.method == "POST" {
				body = webApp
			}
			res := call(t, h, tt.method, "/v2/apps", body, tt.auth...)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d", res.status, tt.status)
			}
			if tt.status == 401 {
				if res.header.Get("WWW-Authenticate") != `Basic realm="Mesosphere"` || seq(m) != s0 {
					t.Fatalf("401 without challenge, or state changed: %v", res.header)
				}
				if strings.Contains(string(res.body), "s3cret") {
					t.Fatal("the answer shows the secret")
				}
			}
		})
	}
	info := call(t, h, "GET", "/v2/info", "", "admin", "s3cret")
	if info.status != 200 || strings.Contains(string(info.body), "s3cret") {
		t.Fatalf("/v2/info: %d, or it shows the secret: %s", info.status, info.body)
	}
	if ping := call(t, h, "GET", "/ping", ""); ping.status != 200 {
		t.Fatalf("/ping without credentials: %d", ping.status)
	}
}

// withTasks creates /web and gives it an agent and two running tasks.
func withTasks(t *testing.T) (*Master, http.Handler, events.Agent) {
	t.Helper()
	m, h := newAPI(t, "")
	if res := call(t, h, "POST", "/v2/apps", webApp); res.status != http.StatusCreated {
		t.Fatal(res.status)
	}
	agent := eventstest.Agent("agent-1")
	agent.Resources.Ports = []events.PortRange{{Begin: 33000, End: 33100}, {Begin: 31000, End: 32000}}
	var app events.App
	m.View(func(s *events.State) { app = s.Apps["/web"] })
	changes := []events.Change{events.PutAgent(agent)}
	for i, id := range []string{"web.1", "web.2"} {
		task := eventstest.Task(id, "/web", agent.ID, events.TaskRunning)
		task.Ports = []int{31001 + i}
		task.Version = app.Version
		started := eventstest.T0.Add(time.Second)
		task.StartedAt = &started
		changes = append(changes, events.PutTask(task))
	}
	if err := m.commit(changes...); err != nil {
		t.Fatal(err)
	}
	return m, h, agent
}

func TestTasks(t *testing.T) {
	m, h, _ := withTasks(t)

	doc := call(t, h, "GET", "/v2/apps/web/tasks", "").json(t)
	task := at(t, doc, "tasks", 0).(map[string]any)
	for _, f := range []string{"id", "appId", "host", "ipAddresses", "ports", "servicePorts", "slaveId", "stagedAt", "startedAt", "state", "version", "healthCheckResults"} {
		if _, ok := task[f]; !ok {
			t.Errorf("task lacks %s: %v", f, task)
		}
	}
	if task["appId"] != "/web" || task["state"] != "TASK_RUNNING" || !marathonTime.MatchString(task["startedAt"].(string)) {
		t.Errorf("task %v", task)
	}
	if hcr, ok := task["healthCheckResults"].([]any); !ok || len(hcr) != 0 {
		t.Errorf("healthCheckResults %v, want []", task["healthCheckResults"])
	}
	app := at(t, call(t, h, "GET", "/v2/apps/web", "").json(t), "app")
	if at(t, app, "tasksRunning") != 2.0 || len(at(t, app, "tasks").([]any)) != 2 {
		t.Errorf("app counts %v", app)
	}

	if n := len(at(t, call(t, h, "GET", "/v2/tasks?status=running", "").json(t), "tasks").([]any)); n != 2 {
		t.Errorf("running tasks %d", n)
	}
	if n := len(at(t, call(t, h, "GET", "/v2/tasks?status=staging", "").json(t), "tasks").([]any)); n != 0 {
		t.Errorf("staging tasks %d", n)
	}

	// Kill one, to be replaced: the answer is the task.
	res := call(t, h, "DELETE", "/v2/apps/web/tasks/web.1", "")
	if res.status != http.StatusOK || at(t, res.json(t), "task", "id") != "web.1" {
		t.Fatalf("kill: %d %s", res.status, res.body)
	}
	m.View(func(s *events.State) {
		if s.Tasks["web.1"].State != events.TaskKilling || s.Apps["/web"].Instances != 2 {
			t.Errorf("after kill: %v, instances %d", s.Tasks["web.1"].State, s.Apps["/web"].Instances)
		}
	})
	// Kill and scale down: the answer is a deployment.
	res = call(t, h, "DELETE", "/v2/apps/web/tasks/web.2?scale=true&force=true", "")
	if res.status != http.StatusOK || at(t, res.json(t), "deploymentId") == "" {
		t.Fatalf("kill and scale: %d %s", res.status, res.body)
	}
	m.View(func(s *events.State) {
		if s.Apps["/web"].Instances != 1 {
			t.Errorf("instances %d after scaling kill", s.Apps["/web"].Instances)
		}
	})
	// Kill by host: none on another host.
	res = call(t, h, "DELETE", "/v2/apps/web/tasks?host=elsewhere", "")
	if res.status != http.StatusOK || len(at(t, res.json(t), "tasks").([]any)) != 0 {
		t.Fatalf("kill on another host: %d %s", res.status, res.body)
	}
	res = call(t, h, "DELETE", "/v2/apps/web/tasks?host=agent-1.test", "")
	if res.status != http.StatusOK || len(at(t, res.json(t), "tasks").([]any)) != 2 {
		t.Fatalf("kill on the host: %d %s", res.status, res.body)
	}
}

func TestDeploymentsAndQueue(t *testing.T) {
	m, h := newAPI(t, "")
	if res := call(t, h, "POST", "/v2/apps", webApp); res.status != http.StatusCreated {
		t.Fatal(res.status)
	}
	var list []map[string]any
	res := call(t, h, "GET", "/v2/deployments", "")
	if err := json.Unmarshal(res.body, &list); err != nil || len(list) != 1 {
		t.Fatalf("deployments %s: %v", res.body, err)
	}
	d := list[0]
	if at(t, d, "affectedApps", 0) != "/web" || at(t, d, "currentActions", 0, "action") != "StartApplication" ||
		at(t, d, "steps", 0, "actions", 0, "app") != "/web" || d["currentStep"] != 1.0 || d["totalSteps"] != 1.0 {
		t.Errorf("deployment %v", d)
	}
	if r, ok := at(t, d, "currentActions", 0, "readinessCheckResults").([]any); !ok || len(r) != 0 {
		t.Errorf("readinessCheckResults %v", r)
	}

	// Why a deployment waits shows on the deployment and on the app.
	var dep events.Deployment
	m.View(func(s *events.State) {
		for _, x := range s.Deployments {
			dep = x
		}
	})
	dep.CurrentActions = []events.DeploymentAction{{Action: "StartApplication", App: "/web", Waiting: "no agent has 0.1 cpus"}}
	if err := m.commit(events.PutDeployment(dep)); err != nil {
		t.Fatal(err)
	}
	if w := at(t, call(t, h, "GET", "/v2/apps/web", "").json(t), "app", "waiting", 0); w != "no agent has 0.1 cpus" {
		t.Errorf("app waiting %v", w)
	}
	res = call(t, h, "GET", "/v2/deployments", "")
	if !strings.Contains(string(res.body), `"waiting":"no agent has 0.1 cpus"`) {
		t.Errorf("deployment without waiting: %s", res.body)
	}

	q := call(t, h, "GET", "/v2/queue", "").json(t)
	if at(t, q, "queue", 0, "count") != 2.0 || at(t, q, "queue", 0, "app", "id") != "/web" ||
		at(t, q, "queue", 0, "delay", "overdue") != true {
		t.Errorf("queue %v", q)
	}

	// Cancel: rollback answers with a deployment, force with 202. Rolling
	// back the deployment that created the app removes the app.
	res = call(t, h, "DELETE", "/v2/deployments/"+dep.ID, "")
	if res.status != http.StatusOK || at(t, res.json(t), "deploymentId") == "" {
		t.Fatalf("cancel: %d %s", res.status, res.body)
	}
	if res = call(t, h, "GET", "/v2/apps/web", ""); res.status != http.StatusNotFound {
		t.Fatalf("app after rolling back its creation: %d %s", res.status, res.body)
	}
	if res = call(t, h, "POST", "/v2/apps", webApp); res.status != http.StatusCreated {
		t.Fatal(res.status)
	}
	if res = call(t, h, "PUT", "/v2/apps/web?force=true", `{"instances":1}`); res.status != http.StatusOK {
		t.Fatal(res.status)
	}
	id := at(t, call(t, h, "GET", "/v2/apps/web", "").json(t), "app", "deployments", 0, "id").(string)
	res = call(t, h, "DELETE", "/v2/deployments/"+id+"?force=true", "")
	if res.status != http.StatusAccepted || len(res.body) != 0 {
		t.Fatalf("forced cancel: %d %s", res.status, res.body)
	}
	if res = call(t, h, "GET", "/v2/deployments", ""); strings.TrimSpace(string(res.body)) != "[]" {
		t.Fatalf("deployments left: %s", res.body)
	}
}

func TestMesosState(t *testing.T) {
	_, h, agent := withTasks(t)
	for _, path := range []string{"/master/state", "/master/state.json", "/state.json"} {
		res := call(t, h, "GET", path, "")
		if res.status != http.StatusOK {
			t.Fatalf("%s: %d", path, res.status)
		}
		st := res.json(t)
		if st["leader"] != "master@127.0.0.1:8080" || st["pid"] != "master@127.0.0.1:8080" ||
			at(t, st, "leader_info", "address", "ip") != "127.0.0.1" || at(t, st, "leader_info", "ip") != 16777343.0 ||
			st["activated_slaves"] != 1.0 {
			t.Errorf("%s: master fields %v", path, st)
		}
		slave := at(t, st, "slaves", 0).(map[string]any)
		if slave["id"] != agent.ID || slave["pid"] != "slave(1)@10.0.0.1:5051" || slave["active"] != true ||
			at(t, slave, "resources", "ports") != "[31000-32000, 33000-33100]" ||
			at(t, slave, "used_resources", "ports") != "[31001-31002]" ||
			at(t, slave, "used_resources", "cpus") != 0.2 ||
			at(t, slave, "attributes", "zone") != "a" {
			t.Errorf("%s: slave %v", path, slave)
		}
		if rt, ok := slave["registered_time"].(float64); !ok || rt != float64(eventstest.T0.Unix()) {
			t.Errorf("registered_time %v", slave["registered_time"])
		}
		fw := at(t, st, "frameworks", 0).(map[string]any)
		task := at(t, fw, "tasks", 0).(map[string]any)
		if fw["name"] != "marathon" || task["name"] != "web" || task["slave_id"] != agent.ID ||
			task["framework_id"] != fw["id"] || at(t, task, "resources", "ports") != "[31001-31001]" ||
			at(t, task, "statuses", 0, "container_status", "network_infos", 0, "ip_addresses", 0, "ip_address") != "10.0.0.1" ||
			at(t, task, "labels", 0, "key") != "HAPROXY_GROUP" {
			t.Errorf("%s: framework %v", path, fw)
		}
	}
	if res := call(t, h, "GET", "/master/health", ""); res.status != http.StatusOK {
		t.Errorf("health: %d", res.status)
	}
}

func TestInfoLeaderPing(t *testing.T) {
	_, h := newAPI(t, "")
	info := call(t, h, "GET", "/v2/info", "").json(t)
	if info["name"] != "atoll" || info["elected"] != true || info["leader"] != "127.0.0.1:8080" ||
		info["frameworkId"] != frameworkID || at(t, info, "http_config", "http_port") != 8080.0 ||
		!strings.HasPrefix(at(t, info, "marathon_config", "master").(string), "nats://127.0.0.1:") {
		t.Errorf("info %v", info)
	}
	res := call(t, h, "GET", "/v2/leader", "")
	if res.status != http.StatusOK || res.json(t)["leader"] != "127.0.0.1:8080" {
		t.Errorf("leader %d %s", res.status, res.body)
	}
	res = call(t, h, "GET", "/ping", "")
	if res.status != http.StatusOK || strings.TrimSpace(string(res.body)) != "pong" ||
		!strings.HasPrefix(res.header.Get("Content-Type"), "text/plain") {
		t.Errorf("ping %d %q %v", res.status, res.body, res.header)
	}
}

func TestAppFilters(t *testing.T) {
	_, h := newAPI(t, "")
	for _, body := range []string{
		`{"id":"/shop/web","cmd":"python -m http.server","labels":{"tier":"front","HAPROXY_GROUP":"external"}}`,
		`{"id":"/shop/db","cmd":"postgres","labels":{"tier":"back"}}`,
		`{"id":"/tools/cron","cmd":"cron -f"}`,
	} {
		if res := call(t, h, "POST", "/v2/apps", body); res.status != http.StatusCreated {
			t.Fatalf("%d %s", res.status, res.body)
		}
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"/shop/db", "/shop/web", "/tools/cron"}},
		{"id=SHOP", []string{"/shop/db", "/shop/web"}},
		{"cmd=http", []string{"/shop/web"}},
		{"label=tier==front", []string{"/shop/web"}},
		{"label=tier", []string{"/shop/db", "/shop/web"}},
		{"label=tier!=front", []string{"/shop/db"}},
		{"label=tier+in+(front,back),HAPROXY_GROUP", []string{"/shop/web"}},
		{"label=tier+notin+(front)", []string{"/shop/db"}},
	}
	for _, tt := range tests {
		res := call(t, h, "GET", "/v2/apps?"+tt.query, "")
		var got []string
		for _, a := range at(t, res.json(t), "apps").([]any) {
			got = append(got, a.(map[string]any)["id"].(string))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("?%s: %v, want %v", tt.query, got, tt.want)
		}
	}
	if res := call(t, h, "GET", "/v2/apps?label=a==b==c", ""); res.status != http.StatusBadRequest {
		t.Errorf("bad selector: %d", res.status)
	}
}

func TestSplitAppPath(t *testing.T) {
	tests := []struct{ in, id, sub, task string }{
		{"/web", "/web", subApp, ""},
		{"/group/web/", "/group/web", subApp, ""},
		{"/group/web/tasks", "/group/web", subTasks, ""},
		{"/group/web/tasks/group_web.1234", "/group/web", subTask, "group_web.1234"},
		{"/group/web/restart", "/group/web", subRestart, ""},
		{"/tasks", "/tasks", subApp, ""},
		{"/tasks/web", "/tasks/web", subApp, ""},
		{"/tasks/web/tasks", "/tasks/web", subTasks, ""},
	}
	for _, tt := range tests {
		id, sub, task := splitAppPath(tt.in)
		if id != tt.id || sub != tt.sub || task != tt.task {
			t.Errorf("splitAppPath(%q) = %q %q %q", tt.in, id, sub, task)
		}
	}
}

func TestFormatRanges(t *testing.T) {
	tests := []struct {
		in   []events.PortRange
		want string
	}{
		{nil, ""},
		{[]events.PortRange{{Begin: 31000, End: 32000}}, "[31000-32000]"},
		{[]events.PortRange{{Begin: 33000, End: 33100}, {Begin: 31000, End: 32000}}, "[31000-32000, 33000-33100]"},
		{[]events.PortRange{{Begin: 31001, End: 31001}, {Begin: 31000, End: 31000}, {Begin: 31005, End: 31005}}, "[31000-31001, 31005-31005]"},
		{[]events.PortRange{{Begin: 10, End: 20}, {Begin: 15, End: 18}}, "[10-20]"},
	}
	for _, tt := range tests {
		if got := formatRanges(tt.in); got != tt.want {
			t.Errorf("formatRanges(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if n := taskName("/group/sub/app01"); n != "app01.sub.group" {
		t.Errorf("taskName %q", n)
	}
}

// The API views must show every field the records have: a field added to
// events.App or events.Task must not silently vanish from the API.
func TestViewsCoverRecords(t *testing.T) {
	keys := func(v any) map[string]bool {
		data, _ := json.Marshal(v)
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		out := map[string]bool{}
		for k := range m {
			out[k] = true
		}
		return out
	}
	app := eventstest.App("/web", 1)
	app.Args, app.User, app.TaskKillGracePeriodSeconds = []string{"x"}, "u", 3
	s := events.NewState()
	view := keys(appViewOf(s, app, true, nil))
	for k := range keys(app) {
		if !view[k] {
			t.Errorf("appView lacks %q", k)
		}
	}
	task := eventstest.Task("web.1", "/web", "a", events.TaskRunning)
	yes := true
	task.Healthy = &yes
	tv := keys(taskViewOf(task))
	// Resources and the status message are not Marathon task fields.
	for k := range keys(task) {
		if !tv[k] && k != "cpus" && k != "mem" && k != "disk" && k != "message" {
			t.Errorf("taskView lacks %q", k)
		}
	}
}

// DELETE /v2/queue/{id}/delay lets an app that failed launch again at once
// (Marathon's QueueResource.resetDelay): 204, and the queue shows it
// overdue; an app with nothing to launch is not in the queue: 404.
func TestResetQueueDelay(t *testing.T) {
	m, h := newAPI(t, "")
	if res := call(t, h, "POST", "/v2/apps", webApp); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	m.mu.Lock()
	m.runtime.failed(m.state.Apps["/web"], m.cfg.Now())
	m.mu.Unlock()
	q := call(t, h, "GET", "/v2/queue", "").json(t)
	if at(t, q, "queue", 0, "delay", "overdue") != false || at(t, q, "queue", 0, "delay", "timeLeftSeconds").(float64) < 1 {
		t.Fatalf("queue after a failure %v", q)
	}

	if res := call(t, h, "DELETE", "/v2/queue/web/delay", ""); res.status != http.StatusNoContent || len(res.body) != 0 {
		t.Fatalf("reset: %d %s", res.status, res.body)
	}
	q = call(t, h, "GET", "/v2/queue", "").json(t)
	if at(t, q, "queue", 0, "delay", "overdue") != true {
		t.Errorf("queue after the reset %v", q)
	}

	res := call(t, h, "DELETE", "/v2/queue/nope/delay", "")
	if res.status != http.StatusNotFound || at(t, res.json(t), "message") != "Application /nope not found in tasks queue." {
		t.Errorf("unknown app: %d %s", res.status, res.body)
	}
	if res := call(t, h, "GET", "/v2/queue/web/delay", ""); res.status != http.StatusMethodNotAllowed {
		t.Errorf("GET of the delay: %d %s", res.status, res.body)
	}
}

// POST /v2/tasks/delete kills tasks by id across apps, as Marathon's
// TasksResource: unknown ids are skipped, malformed ones are a 400, scale
// with wipe is a 400, and scale answers with the deployment.
func TestDeleteTasksByID(t *testing.T) {
	m, h, agent := withTasks(t)
	if res := call(t, h, "POST", "/v2/apps", `{"id":"api","cmd":"sleep 1000","instances":1}`); res.status != http.StatusCreated {
		t.Fatal(res.status)
	}
	if err := m.commit(events.PutTask(eventstest.Task("api.1", "/api", agent.ID, events.TaskRunning))); err != nil {
		t.Fatal(err)
	}
	state := func(id string) (st events.TaskState) {
		m.View(func(s *events.State) { st = s.Tasks[id].State })
		return st
	}

	for _, tc := range []struct{ target, body, msg string }{
		{"/v2/tasks/delete", `{"ids":["web.1","nodot"]}`, "Invalid task id 'nodot'."},
		{"/v2/tasks/delete?scale=true&wipe=true", `{"ids":["web.1"]}`, "You cannot use scale and wipe at the same time."},
	} {
		res := call(t, h, "POST", tc.target, tc.body)
		if res.status != http.StatusBadRequest || at(t, res.json(t), "message") != tc.msg {
			t.Errorf("%s %s: %d %s", tc.target, tc.body, res.status, res.body)
		}
	}
	if state("web.1") != events.TaskRunning {
		t.Fatalf("a refused call killed web.1: %s", state("web.1"))
	}
	res := call(t, h, "POST", "/v2/tasks/delete", `{"ids":["web.1","api.1","web.999"]}`)
	if res.status != http.StatusOK || len(at(t, res.json(t), "tasks").([]any)) != 2 {
		t.Fatalf("kill: %d %s", res.status, res.body)
	}
	if state("web.1") != events.TaskKilling || state("api.1") != events.TaskKilling {
		t.Errorf("after the kill: web.1 %s, api.1 %s", state("web.1"), state("api.1"))
	}

	res = call(t, h, "POST", "/v2/tasks/delete?scale=true&force=true", `{"ids":["web.2"]}`)
	if res.status != http.StatusOK {
		t.Fatalf("kill and scale: %d %s", res.status, res.body)
	}
	namesItsDeployment(t, res)
	m.View(func(s *events.State) {
		if s.Apps["/web"].Instances != 1 || s.Tasks["web.2"].State != events.TaskKilling {
			t.Errorf("after kill and scale: instances %d, web.2 %s", s.Apps["/web"].Instances, s.Tasks["web.2"].State)
		}
	})

	// Tasks of several apps with scale: one deployment shrinks them all,
	// as Marathon's, and the named tasks are the ones killed.
	if err := m.commit(events.PutTask(eventstest.Task("web.3", "/web", agent.ID, events.TaskRunning)),
		events.PutTask(eventstest.Task("api.2", "/api", agent.ID, events.TaskRunning))); err != nil {
		t.Fatal(err)
	}
	res = call(t, h, "POST", "/v2/tasks/delete?scale=true&force=true", `{"ids":["web.3","api.2"]}`)
	if res.status != http.StatusOK {
		t.Fatalf("scale across apps: %d %s", res.status, res.body)
	}
	namesItsDeployment(t, res)
	depID := at(t, res.json(t), "deploymentId").(string)
	m.View(func(s *events.State) {
		if s.Apps["/web"].Instances != 0 || s.Apps["/api"].Instances != 0 {
			t.Errorf("instances after: /web %d, /api %d; want 0 and 0", s.Apps["/web"].Instances, s.Apps["/api"].Instances)
		}
		if s.Tasks["web.3"].State != events.TaskKilling || s.Tasks["api.2"].State != events.TaskKilling {
			t.Errorf("web.3 %s, api.2 %s; want both killing", s.Tasks["web.3"].State, s.Tasks["api.2"].State)
		}
		if d, ok := s.Deployments[depID]; ok && !slices.Equal(d.AffectedApps, []string{"/api", "/web"}) {
			t.Errorf("the deployment affects %v, want both apps", d.AffectedApps)
		}
	})
}

// With Accept: text/plain, /v2/tasks and /v2/apps/{id}/tasks answer with
// Marathon's script-friendly list; JSON stays the answer for */*.
func TestTasksAsText(t *testing.T) {
	m, h, _ := withTasks(t)
	if res := call(t, h, "POST", "/v2/apps", `{"id":"/g/noports","cmd":"sleep 1","instances":1,"portDefinitions":[]}`); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	var port int
	m.View(func(s *events.State) { port = s.Apps["/web"].PortDefinitions[0].Port })
	get := func(target, accept string) (string, string) {
		req := httptest.NewRequest("GET", target, nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Header().Get("Content-Type"), rec.Body.String()
	}
	want := fmt.Sprintf("g_noports\t \t\nweb\t%d\tagent-1.test:31001\tagent-1.test:31002\t\n", port)
	if ct, body := get("/v2/tasks", "text/plain"); !strings.HasPrefix(ct, "text/plain") || body != want {
		t.Errorf("/v2/tasks as text: %s\n%q\nwant\n%q", ct, body, want)
	}
	want = fmt.Sprintf("web\t%d\tagent-1.test:31001\tagent-1.test:31002\t\n", port)
	if _, body := get("/v2/apps/web/tasks", "text/plain"); body != want {
		t.Errorf("/v2/apps/web/tasks as text: %q, want %q", body, want)
	}
	if ct, _ := get("/v2/tasks", "text/plain, */*"); ct != "application/json" {
		t.Errorf("Accept: text/plain, */*: %s, want JSON", ct)
	}
}

// PATCH /v2/apps/{id} changes only the fields given and never creates an
// app (Marathon's AppsResource.patch).
func TestPatchApp(t *testing.T) {
	m, h := newAPI(t, "")
	if res := call(t, h, "POST", "/v2/apps", webApp); res.status != http.StatusCreated {
		t.Fatal(res.status)
	}
	res := call(t, h, "PATCH", "/v2/apps/web?force=true", `{"instances":5}`)
	if res.status != http.StatusOK {
		t.Fatalf("patch: %d %s", res.status, res.body)
	}
	namesItsDeployment(t, res)
	m.View(func(s *events.State) {
		if a := s.Apps["/web"]; a.Instances != 5 || a.Cmd != "sleep 1000" || a.Labels["HAPROXY_GROUP"] != "external" {
			t.Errorf("after patch: %+v", a)
		}
	})
	res = call(t, h, "PATCH", "/v2/apps/nope", `{"instances":1}`)
	if res.status != http.StatusNotFound || at(t, res.json(t), "message") != "App '/nope' does not exist" {
		t.Errorf("patch of a missing app: %d %s", res.status, res.body)
	}
	m.View(func(s *events.State) {
		if _, ok := s.Apps["/nope"]; ok {
			t.Error("PATCH created /nope")
		}
	})
}

package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// fake is an httptest server that answers canned Marathon-shaped responses
// and records the requests it got.
type fake struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	routes map[string]func(w http.ResponseWriter, r *http.Request, body []byte)
	reqs   []recorded
}

type recorded struct {
	Method, Path, Query, Body string
	User, Pass                string
	HasAuth                   bool
	ContentType               string
}

func newFake(t *testing.T) *fake {
	f := &fake{t: t, routes: map[string]func(http.ResponseWriter, *http.Request, []byte){}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u, p, ok := r.BasicAuth()
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, string(body), u, p, ok, r.Header.Get("Content-Type")})
		h := f.routes[r.Method+" "+r.URL.Path]
		f.mu.Unlock()
		if h == nil {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"no route `+r.Method+" "+r.URL.Path+`"}`)
			return
		}
		h(w, r, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) handle(route string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[route] = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func (f *fake) last() recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		f.t.Fatal("no request recorded")
	}
	return f.reqs[len(f.reqs)-1]
}

const echoApp = `{
  "id": "/demo/echo",
  "cmd": "python3 -m http.server $PORT0",
  "instances": 3,
  "cpus": 0.1,
  "mem": 32,
  "disk": 0,
  "portDefinitions": [{"port": 10000, "protocol": "tcp", "name": "http", "labels": {}}],
  "requirePorts": false,
  "constraints": [["hostname", "UNIQUE"]],
  "labels": {"HAPROXY_GROUP": "external"},
  "env": {},
  "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 300,
    "intervalSeconds": 10, "timeoutSeconds": 5, "maxConsecutiveFailures": 3, "delaySeconds": 15}],
  "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
  "version": "2024-05-01T10:00:00.000Z",
  "versionInfo": {"lastScalingAt": "2024-05-01T10:00:00.000Z", "lastConfigChangeAt": "2024-05-01T09:00:00.000Z"},
  "tasksRunning": 2,
  "tasksStaged": 1,
  "tasksHealthy": 2,
  "tasksUnhealthy": 0,
  "deployments": [{"id": "5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43"}],
  "someFutureField": {"kept": true},
  "tasks": [{
    "id": "demo_echo.6f4f1a1e-0000-11ef-9f27-0242ac110002",
    "appId": "/demo/echo",
    "slaveId": "agent-1",
    "host": "node1",
    "ipAddresses": [{"ipAddress": "127.0.0.2", "protocol": "IPv4"}],
    "ports": [31005],
    "servicePorts": [10000],
    "state": "TASK_RUNNING",
    "healthCheckResults": [{"alive": true, "consecutiveFailures": 0, "firstSuccess": "2024-05-01T10:00:20.000Z",
      "lastFailure": null, "lastSuccess": "2024-05-01T10:01:00.000Z", "taskId": "demo_echo.6f4f1a1e-0000-11ef-9f27-0242ac110002"}],
    "stagedAt": "2024-05-01T10:00:01.000Z",
    "startedAt": "2024-05-01T10:00:03.000Z",
    "version": "2024-05-01T09:00:00.000Z"
  }]
}`

func TestAppsAsksForTasksAndDecodes(t *testing.T) {
	f := newFake(t)
	f.handle("GET /v2/apps", 200, `{"apps":[`+echoApp+`]}`)
	c := New(f.srv.URL, nil)
	apps, err := c.Apps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req := f.last()
	if !strings.Contains(req.Query, "embed=apps.tasks") {
		t.Errorf("query %q does not embed apps.tasks", req.Query)
	}
	if len(apps) != 1 {
		t.Fatalf("got %d apps", len(apps))
	}
	a := apps[0]
	if a.ID != "/demo/echo" || a.Instances != 3 || a.Cpus != 0.1 || a.Mem != 32 {
		t.Errorf("definition: %+v", a.App)
	}
	if a.TasksRunning != 2 || a.TasksStaged != 1 || a.TasksHealthy != 2 || a.Running() != 2 {
		t.Errorf("counts: running %d staged %d healthy %d", a.TasksRunning, a.TasksStaged, a.TasksHealthy)
	}
	if got := a.ServicePorts(); len(got) != 1 || got[0] != 10000 {
		t.Errorf("service ports %v", got)
	}
	if len(a.Deployments) != 1 || a.Deployments[0].ID != "5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43" {
		t.Errorf("deployments %+v", a.Deployments)
	}
	if len(a.Constraints) != 1 || strings.Join(a.Constraints[0], ":") != "hostname:UNIQUE" {
		t.Errorf("constraints %v", a.Constraints)
	}
	if len(a.Tasks) != 1 {
		t.Fatalf("tasks %+v", a.Tasks)
	}
	tk := a.Tasks[0]
	if tk.Host != "node1" || tk.AgentID != "agent-1" || tk.State != events.TaskRunning || len(tk.Ports) != 1 || tk.Ports[0] != 31005 {
		t.Errorf("task %+v", tk.Task)
	}
	if tk.StartedAt == nil || !tk.StartedAt.Equal(time.Date(2024, 5, 1, 10, 0, 3, 0, time.UTC)) {
		t.Errorf("startedAt %v", tk.StartedAt)
	}
	if len(tk.HealthCheckResults) != 1 || !tk.HealthCheckResults[0].Alive {
		t.Errorf("health results %+v", tk.HealthCheckResults)
	}
	// Raw keeps what the typed fields do not know.
	if !strings.Contains(string(a.Raw), "someFutureField") || !json.Valid(a.Raw) {
		t.Errorf("app raw JSON lost fields: %s", a.Raw)
	}
	if !strings.Contains(string(tk.Raw), `"slaveId": "agent-1"`) {
		t.Errorf("task raw JSON: %s", tk.Raw)
	}
}

func TestRunningCountsTasksWithoutCounts(t *testing.T) {
	f := newFake(t)
	f.handle("GET /v2/apps", 200, `{"apps":[{"id":"/a","instances":2,"tasks":[
		{"id":"a.1","appId":"/a","state":"TASK_RUNNING","stagedAt":"2024-05-01T10:00:00Z","version":"2024-05-01T10:00:00Z"},
		{"id":"a.2","appId":"/a","state":"TASK_STAGING","stagedAt":"2024-05-01T10:00:00Z","version":"2024-05-01T10:00:00Z"}]}]}`)
	apps, err := New(f.srv.URL, nil).Apps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := apps[0].Running(); got != 1 {
		t.Errorf("Running() = %d, want 1", got)
	}
}

func TestAppUnwrapsAndEmbedsTasks(t *testing.T) {
	f := newFake(t)
	f.handle("GET /v2/apps/demo/echo", 200, `{"app":`+echoApp+`}`)
	c := New(f.srv.URL, nil)
	for _, id := range []string{"/demo/echo", "demo/echo", "/demo/echo/"} {
		a, err := c.App(context.Background(), id)
		if err != nil {
			t.Fatalf("App(%q): %v", id, err)
		}
		if a.ID != "/demo/echo" || len(a.Tasks) != 1 {
			t.Errorf("App(%q) = %+v", id, a)
		}
		if q := f.last().Query; !strings.Contains(q, "embed=app.tasks") {
			t.Errorf("query %q does not embed app.tasks", q)
		}
	}
	if _, err := c.App(context.Background(), "/"); err == nil {
		t.Error("App(\"/\") should fail")
	}
}

func TestNotFound(t *testing.T) {
	f := newFake(t)
	f.handle("GET /v2/apps/nope", 404, `{"message":"App '/nope' does not exist"}`)
	_, err := New(f.srv.URL, nil).App(context.Background(), "/nope")
	if !IsNotFound(err) {
		t.Fatalf("IsNotFound(%v) = false", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Message != "App '/nope' does not exist" || ae.Status != 404 {
		t.Fatalf("error %#v", err)
	}
	if got := err.Error(); got != "App '/nope' does not exist (HTTP 404)" {
		t.Errorf("Error() = %q", got)
	}
}

func TestValidationErrorDetails(t *testing.T) {
	f := newFake(t)
	f.handle("POST /v2/apps", 422, `{"message":"Object is not valid","details":[
		{"path":"/id","errors":["'Bad_ID' must fully match the regular expression"]},
		{"path":"/instances","errors":["got -1, expected 0 or more","second problem"]}]}`)
	_, _, err := New(f.srv.URL, nil).CreateApp(context.Background(), []byte(`{"id":"Bad_ID","instances":-1}`))
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an *APIError", err)
	}
	if ae.Status != 422 || ae.Message != "Object is not valid" {
		t.Errorf("status %d message %q", ae.Status, ae.Message)
	}
	want := []ErrorDetail{
		{Path: "/id", Errors: []string{"'Bad_ID' must fully match the regular expression"}},
		{Path: "/instances", Errors: []string{"got -1, expected 0 or more", "second problem"}},
	}
	if len(ae.Details) != len(want) {
		t.Fatalf("details %+v", ae.Details)
	}
	for i := range want {
		if ae.Details[i].Path != want[i].Path || strings.Join(ae.Details[i].Errors, "|") != strings.Join(want[i].Errors, "|") {
			t.Errorf("detail %d = %+v, want %+v", i, ae.Details[i], want[i])
		}
	}
	if s := err.Error(); !strings.Contains(s, "/instances: second problem") || !strings.Contains(s, "HTTP 422") {
		t.Errorf("Error() = %q", s)
	}
}

func TestOldStyleValidationErrors(t *testing.T) {
	f := newFake(t)
	f.handle("POST /v2/apps", 422, `{"errors":[{"attribute":"id","error":"path contains invalid characters"}]}`)
	_, _, err := New(f.srv.URL, nil).CreateApp(context.Background(), []byte(`{}`))
	var ae *APIError
	if !errors.As(err, &ae) || len(ae.Details) != 1 || ae.Details[0].Path != "/id" || ae.Message == "" {
		t.Fatalf("error %#v", err)
	}
}

func TestConflictListsDeployments(t *testing.T) {
	f := newFake(t)
	f.handle("PUT /v2/apps/echo", 409, `{"message":"App is locked by one or more deployments. Override with the option '?force=true'.","deployments":[{"id":"d-1"}]}`)
	_, _, err := New(f.srv.URL, nil).ScaleApp(context.Background(), "/echo", 2, false)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 409 || len(ae.Deployments) != 1 || ae.Deployments[0].ID != "d-1" {
		t.Fatalf("error %#v", err)
	}
	if StatusOf(err) != 409 || StatusOf(errors.New("x")) != 0 || StatusOf(nil) != 0 {
		t.Error("StatusOf")
	}
}

func TestNonJSONErrorBody(t *testing.T) {
	f := newFake(t)
	f.mu.Lock()
	f.routes["GET /v2/tasks"] = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html><body>bad gateway</body></html>")
	}
	f.routes["GET /v2/deployments"] = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "leader unknown\n")
	}
	f.mu.Unlock()
	c := New(f.srv.URL, nil)
	_, err := c.Tasks(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Message != "Bad Gateway" {
		t.Errorf("html error: %#v", err)
	}
	_, err = c.Deployments(context.Background())
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Message != "leader unknown" {
		t.Errorf("text error: %#v", err)
	}
}

func TestBasicAuthFromURL(t *testing.T) {
	f := newFake(t)
	f.handle("GET /v2/apps", 200, `{"apps":[]}`)
	base := strings.Replace(f.srv.URL, "http://", "http://admin:s%40cret@", 1)
	c := New(base, nil)
	if strings.Contains(c.BaseURL(), "cret") || strings.Contains(c.BaseURL(), "admin") {
		t.Errorf("BaseURL() leaks credentials: %s", c.BaseURL())
	}
	if _, err := c.Apps(context.Background()); err != nil {
		t.Fatal(err)
	}
	req := f.last()
	if !req.HasAuth || req.User != "admin" || req.Pass != "s@cret" {
		t.Errorf("basic auth %q/%q (%v)", req.User, req.Pass, req.HasAuth)
	}
	// No credentials in the URL: no Authorization header.
	if _, err := New(f.srv.URL, nil).Apps(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.last().HasAuth {
		t.Error("sent basic auth without credentials")
	}
}

func TestNetworkErrorHidesCredentials(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := strings.Replace(srv.URL, "http://", "http://admin:topsecret@", 1)
	srv.Close() // connection refused from now on
	_, err := New(url, nil).Apps(context.Background())
	if err == nil {
		t.Fatal("no error from a closed server")
	}
	if strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error leaks the password: %v", err)
	}
	if StatusOf(err) != 0 {
		t.Errorf("network error has status %d", StatusOf(err))
	}
}

func TestBaseURLForms(t *testing.T) {
	f := newFake(t)
	f.handle("GET /marathon/v2/leader", 200, `{"leader":"127.0.0.1:8080"}`)
	f.handle("GET /v2/leader", 200, `{"leader":"127.0.0.1:8081"}`)
	ctx := context.Background()
	if l, err := New(f.srv.URL+"/marathon/", nil).Leader(ctx); err != nil || l != "127.0.0.1:8080" {
		t.Errorf("prefix: %q %v", l, err)
	}
	if l, err := New(strings.TrimPrefix(f.srv.URL, "http://"), nil).Leader(ctx); err != nil || l != "127.0.0.1:8081" {
		t.Errorf("no scheme: %q %v", l, err)
	}
	for _, bad := range []string{"ftp://x:1", "http://", "http://u:p@[::1"} {
		_, err := New(bad, nil).Leader(ctx)
		if err == nil {
			t.Errorf("New(%q): no error", bad)
		} else if strings.Contains(err.Error(), ":p@") {
			t.Errorf("New(%q): error leaks credentials: %v", bad, err)
		}
	}
}

func TestCreateApp(t *testing.T) {
	f := newFake(t)
	f.mu.Lock()
	f.routes["POST /v2/apps"] = func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Location", "/v2/apps/demo/echo")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, echoApp)
	}
	f.mu.Unlock()
	def := []byte(`{"id":"/demo/echo","cmd":"sleep 1000","instances":3}`)
	app, loc, err := New(f.srv.URL, nil).CreateApp(context.Background(), def)
	if err != nil {
		t.Fatal(err)
	}
	req := f.last()
	if req.Body != string(def) || req.ContentType != "application/json" {
		t.Errorf("sent body %q content type %q", req.Body, req.ContentType)
	}
	if loc != "/v2/apps/demo/echo" || app.ID != "/demo/echo" || len(app.Deployments) != 1 {
		t.Errorf("location %q app %+v", loc, app)
	}
}

func TestChangesReturnDeployment(t *testing.T) {
	f := newFake(t)
	res := `{"deploymentId":"d-42","version":"2024-05-01T11:00:00.000Z"}`
	f.handle("PUT /v2/apps/demo/echo", 200, res)
	f.handle("POST /v2/apps/demo/echo/restart", 200, res)
	f.handle("DELETE /v2/apps/demo/echo", 200, res)
	c := New(f.srv.URL, nil)
	ctx := context.Background()
	type call struct {
		name                    string
		do                      func() (string, string, error)
		method, path, query, bd string
	}
	calls := []call{
		{"update", func() (string, string, error) { return c.UpdateApp(ctx, "/demo/echo", []byte(`{"cmd":"x"}`), false) },
			"PUT", "/v2/apps/demo/echo", "", `{"cmd":"x"}`},
		{"update forced", func() (string, string, error) { return c.UpdateApp(ctx, "demo/echo", []byte(`{"cmd":"x"}`), true) },
			"PUT", "/v2/apps/demo/echo", "force=true", `{"cmd":"x"}`},
		{"scale", func() (string, string, error) { return c.ScaleApp(ctx, "/demo/echo", 5, false) },
			"PUT", "/v2/apps/demo/echo", "", `{"instances":5}`},
		{"restart", func() (string, string, error) { return c.RestartApp(ctx, "/demo/echo", true) },
			"POST", "/v2/apps/demo/echo/restart", "force=true", ""},
		{"delete", func() (string, string, error) { return c.DeleteApp(ctx, "/demo/echo", false) },
			"DELETE", "/v2/apps/demo/echo", "", ""},
	}
	for _, cl := range calls {
		dep, ver, err := cl.do()
		if err != nil {
			t.Errorf("%s: %v", cl.name, err)
			continue
		}
		if dep != "d-42" || ver != "2024-05-01T11:00:00.000Z" {
			t.Errorf("%s: deployment %q version %q", cl.name, dep, ver)
		}
		req := f.last()
		if req.Method != cl.method || req.Path != cl.path || req.Query != cl.query || req.Body != cl.bd {
			t.Errorf("%s: sent %s %s?%s %q", cl.name, req.Method, req.Path, req.Query, req.Body)
		}
	}
	if _, _, err := c.ScaleApp(ctx, "/demo/echo", -1, false); err == nil {
		t.Error("ScaleApp(-1) should fail")
	}
}

func TestTasksAndAppTasks(t *testing.T) {
	f := newFake(t)
	tasks := `{"tasks":[{"id":"echo.1","appId":"/echo","slaveId":"a1","host":"node1","ports":[31000,31001],
		"servicePorts":[10000,10001],"state":"TASK_STAGING","stagedAt":"2024-05-01T10:00:00.000Z","startedAt":null,
		"version":"2024-05-01T10:00:00.000Z"}]}`
	f.handle("GET /v2/tasks", 200, tasks)
	f.handle("GET /v2/apps/echo/tasks", 200, tasks)
	c := New(f.srv.URL, nil)
	all, err := c.Tasks(context.Background())
	if err != nil || len(all) != 1 || all[0].State != events.TaskStaging || all[0].StartedAt != nil || len(all[0].Ports) != 2 {
		t.Fatalf("Tasks: %+v %v", all, err)
	}
	one, err := c.AppTasks(context.Background(), "/echo")
	if err != nil || len(one) != 1 || one[0].ID != "echo.1" {
		t.Fatalf("AppTasks: %+v %v", one, err)
	}
}

func TestDeployments(t *testing.T) {
	f := newFake(t)
	f.handle("GET /v2/deployments", 200, `[{"id":"d-1","version":"2024-05-01T10:00:00.000Z","affectedApps":["/echo"],
		"affectedPods":[],"steps":[{"actions":[{"action":"StartApplication","app":"/echo"}]},{"actions":[{"action":"ScaleApplication","app":"/echo"}]}],
		"currentActions":[{"action":"ScaleApplication","app":"/echo","readinessCheckResults":[]}],"currentStep":2,"totalSteps":2}]`)
	deps, err := New(f.srv.URL, nil).Deployments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) != 1 || deps[0].ID != "d-1" || deps[0].AffectedApps[0] != "/echo" || deps[0].CurrentStep != 2 ||
		len(deps[0].Steps) != 2 || deps[0].CurrentActions[0].Action != "ScaleApplication" {
		t.Errorf("deployments %+v", deps)
	}
}

func TestState(t *testing.T) {
	f := newFake(t)
	f.handle("GET /master/state", 200, `{"version":"1.0.0","leader":"master@127.0.0.1:5050","hostname":"m1",
	  "slaves":[{"id":"a1","hostname":"node1","pid":"slave(1)@127.0.0.2:5051","port":5051,
	    "resources":{"cpus":4,"mem":7800,"disk":10000,"ports":"[31000-32000]"},
	    "used_resources":{"cpus":0.5,"mem":256,"disk":0,"ports":"[31000-31001]"},
	    "attributes":{"region":"eu-west","rack":3},"active":true,"registered_time":1714557600.5}],
	  "frameworks":[{"id":"marathon","name":"marathon"}]}`)
	st, err := New(f.srv.URL, nil).State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.LeaderHostPort() != "127.0.0.1:5050" || len(st.Slaves) != 1 || len(st.Frameworks) != 1 {
		t.Fatalf("state %+v", st)
	}
	a := st.Slaves[0]
	if a.ID != "a1" || a.IP() != "127.0.0.2" || a.Resources.Cpus != 4 || a.Resources.Ports != "[31000-32000]" ||
		a.UsedResources.Mem != 256 || !a.Active || a.Attributes["region"] != "eu-west" || a.Attributes["rack"] != 3.0 {
		t.Errorf("agent %+v", a)
	}
	if !strings.Contains(string(a.Raw), "registered_time") {
		t.Errorf("raw %s", a.Raw)
	}
	if ip := (&Slave{PID: "slave(1)@[::1]:5051"}).IP(); ip != "::1" {
		t.Errorf("IPv6 pid: %q", ip)
	}
}

func TestInfo(t *testing.T) {
	f := newFake(t)
	f.handle("GET /v2/info", 200, `{"name":"atoll","version":"0.1.0","elected":true,"leader":"127.0.0.1:8080",
		"frameworkId":"fw-1","marathon_config":{"master":"nats://x"},"zookeeper_config":{},"http_config":{"http_port":8080}}`)
	info, err := New(f.srv.URL, nil).Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "atoll" || !info.Elected || info.Leader != "127.0.0.1:8080" || info.FrameworkID != "fw-1" ||
		!strings.Contains(string(info.HTTPConfig), "8080") {
		t.Errorf("info %+v", info)
	}
}

func TestContextCancel(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := New(srv.URL, nil).Apps(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want deadline exceeded", err)
	}
}

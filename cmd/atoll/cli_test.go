package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeMarathon is a small stateful Marathon: apps, their tasks and
// deployments that progress by one task each time /v2/deployments is polled
// and disappear on the poll after the app has converged.
type fakeMarathon struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	apps    map[string]*fakeApp
	deps    []*fakeDep
	nextDep int
	stuck   bool   // deployments never progress
	halted  string // when set, deployments stop and say why (atoll's "failed")
	fail503 int    // answer that many /v2/deployments polls with 503
	user    string
	pass    string
	reqs    []string // "METHOD /path?query"
}

type fakeApp struct {
	def     map[string]any
	target  int
	running int
	deleted bool
}

type fakeDep struct {
	id    string
	appID string
}

var cliTestNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func init() {
	pollInterval = time.Millisecond
	cliNow = func() time.Time { return cliTestNow }
}

func newFakeMarathon(t *testing.T) *fakeMarathon {
	f := &fakeMarathon{t: t, apps: map[string]*fakeApp{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	t.Setenv("ATOLL_MASTER", f.srv.URL)
	return f
}

func (f *fakeMarathon) addApp(def map[string]any, running int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := def["id"].(string)
	n := 1
	if v, ok := def["instances"]; ok {
		n = int(v.(float64))
	}
	def["instances"] = float64(n)
	f.apps[id] = &fakeApp{def: def, target: n, running: running}
}

func (f *fakeMarathon) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

func fakeWriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeMarathon) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r.Method+" "+r.URL.RequestURI())
	if f.user != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.pass {
			fakeWriteJSON(w, 401, map[string]any{"message": "Invalid username or password."})
			return
		}
	}
	body, _ := io.ReadAll(r.Body)
	path := r.URL.Path
	switch {
	case r.Method == "GET" && path == "/v2/apps":
		var list []any
		for _, id := range f.appIDs() {
			list = append(list, f.appJSON(id))
		}
		fakeWriteJSON(w, 200, map[string]any{"apps": list})
	case r.Method == "POST" && path == "/v2/apps":
		var def map[string]any
		if err := json.Unmarshal(body, &def); err != nil {
			fakeWriteJSON(w, 400, map[string]any{"message": "Invalid JSON"})
			return
		}
		id, _ := def["id"].(string)
		if id != strings.ToLower(id) {
			fakeWriteJSON(w, 422, map[string]any{"message": "Object is not valid", "details": []any{
				map[string]any{"path": "/id", "errors": []string{"must be lower case"}},
				map[string]any{"path": "/mem", "errors": []string{"got 1, expected 32 or more"}},
			}})
			return
		}
		if _, ok := f.apps[id]; ok {
			fakeWriteJSON(w, 409, map[string]any{"message": "An app with id [" + id + "] already exists."})
			return
		}
		n := 1
		if v, ok := def["instances"].(float64); ok {
			n = int(v)
		}
		def["instances"] = float64(n)
		f.apps[id] = &fakeApp{def: def, target: n}
		f.startDeployment(id)
		w.Header().Set("Location", "/v2/apps"+id)
		fakeWriteJSON(w, 201, f.appJSON(id))
	case r.Method == "GET" && path == "/v2/deployments" && f.fail503 > 0:
		f.fail503--
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "no leader")
	case r.Method == "GET" && path == "/v2/deployments":
		f.advance()
		list := []any{}
		for _, d := range f.deps {
			list = append(list, map[string]any{"id": d.id, "version": "2024-05-01T12:00:00.000Z",
				"affectedApps": []string{d.appID}, "steps": []any{}, "currentActions": []any{
					map[string]any{"action": "ScaleApplication", "app": d.appID}}, "failed": f.halted,
				"currentStep": 1, "totalSteps": 1})
		}
		fakeWriteJSON(w, 200, list)
	case r.Method == "GET" && path == "/v2/tasks":
		var tasks []any
		for _, id := range f.appIDs() {
			tasks = append(tasks, f.tasksJSON(id)...)
		}
		fakeWriteJSON(w, 200, map[string]any{"tasks": tasks})
	case r.Method == "GET" && path == "/master/state":
		fakeWriteJSON(w, 200, json.RawMessage(fakeAgentsState))
	case strings.HasPrefix(path, "/v2/apps/"):
		f.serveApp(w, r, body)
	default:
		fakeWriteJSON(w, 404, map[string]any{"message": "not found"})
	}
}

func (f *fakeMarathon) serveApp(w http.ResponseWriter, r *http.Request, body []byte) {
	rest := strings.TrimPrefix(r.URL.Path, "/v2/apps")
	suffix := ""
	for _, s := range []string{"/tasks", "/restart"} {
		if strings.HasSuffix(rest, s) {
			rest, suffix = strings.TrimSuffix(rest, s), s
		}
	}
	a, ok := f.apps[rest]
	if ok && a.deleted {
		ok = false
	}
	if !ok && !(r.Method == "PUT" && suffix == "") {
		fakeWriteJSON(w, 404, map[string]any{"message": "App '" + rest + "' does not exist"})
		return
	}
	for _, d := range f.deps {
		if d.appID == rest && r.Method != "GET" && r.URL.Query().Get("force") != "true" {
			fakeWriteJSON(w, 409, map[string]any{"message": "App is locked by one or more deployments. Override with the option '?force=true'.",
				"deployments": []any{map[string]any{"id": d.id}}})
			return
		}
	}
	switch {
	case r.Method == "GET" && suffix == "":
		fakeWriteJSON(w, 200, map[string]any{"app": f.appJSON(rest)})
	case r.Method == "GET" && suffix == "/tasks":
		fakeWriteJSON(w, 200, map[string]any{"tasks": f.tasksJSON(rest)})
	case r.Method == "PUT" && suffix == "":
		var patch map[string]any
		if err := json.Unmarshal(body, &patch); err != nil {
			fakeWriteJSON(w, 400, map[string]any{"message": "Invalid JSON"})
			return
		}
		if !ok {
			a = &fakeApp{def: map[string]any{"id": rest, "instances": float64(1)}, target: 1}
			f.apps[rest] = a
		}
		for k, v := range patch {
			a.def[k] = v
		}
		if n, ok := patch["instances"].(float64); ok {
			a.target = int(n)
		}
		fakeWriteJSON(w, 200, map[string]any{"deploymentId": f.startDeployment(rest), "version": "2024-05-01T12:00:01.000Z"})
	case r.Method == "POST" && suffix == "/restart":
		a.running = 0
		fakeWriteJSON(w, 200, map[string]any{"deploymentId": f.startDeployment(rest), "version": "2024-05-01T12:00:02.000Z"})
	case r.Method == "DELETE" && suffix == "":
		a.target = 0
		a.deleted = true
		fakeWriteJSON(w, 200, map[string]any{"deploymentId": f.startDeployment(rest), "version": "2024-05-01T12:00:03.000Z"})
	default:
		fakeWriteJSON(w, 405, map[string]any{"message": "method not allowed"})
	}
}

func (f *fakeMarathon) startDeployment(appID string) string {
	f.nextDep++
	id := fmt.Sprintf("d-%d", f.nextDep)
	f.deps = append(f.deps, &fakeDep{id: id, appID: appID})
	return id
}

// advance moves every deployment one step: one task more or less, or,
// once converged, the end of the deployment.
func (f *fakeMarathon) advance() {
	if f.stuck || f.halted != "" {
		return
	}
	var keep []*fakeDep
	for _, d := range f.deps {
		a := f.apps[d.appID]
		switch {
		case a.running < a.target:
			a.running++
		case a.running > a.target:
			a.running--
		default:
			if a.deleted {
				delete(f.apps, d.appID)
			}
			continue // converged: the deployment ends
		}
		keep = append(keep, d)
	}
	f.deps = keep
}

func (f *fakeMarathon) appIDs() []string {
	var ids []string
	for id, a := range f.apps {
		if !a.deleted {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func (f *fakeMarathon) appJSON(id string) map[string]any {
	a := f.apps[id]
	out := map[string]any{"cpus": 0.1, "mem": 32.0, "disk": 0.0, "portDefinitions": []any{},
		"version": "2024-05-01T12:00:00.000Z", "extraServerField": "kept"}
	for k, v := range a.def {
		out[k] = v
	}
	out["instances"] = float64(a.target)
	out["tasksRunning"] = a.running
	out["tasksStaged"] = 0
	out["tasksHealthy"] = 0
	if _, ok := out["healthChecks"]; ok {
		out["tasksHealthy"] = a.running
	}
	out["tasksUnhealthy"] = 0
	deps := []any{}
	for _, d := range f.deps {
		if d.appID == id {
			deps = append(deps, map[string]any{"id": d.id})
		}
	}
	out["deployments"] = deps
	out["tasks"] = f.tasksJSON(id)
	return out
}

func (f *fakeMarathon) tasksJSON(id string) []any {
	a := f.apps[id]
	var out []any
	name := strings.ReplaceAll(strings.Trim(id, "/"), "/", "_")
	for i := 0; i < a.running; i++ {
		t := map[string]any{
			"id": fmt.Sprintf("%s.%08d-0000-0000-0000-000000000000", name, i), "appId": id,
			"slaveId": fmt.Sprintf("agent-%d", i+1), "host": fmt.Sprintf("node%d", i+1),
			"ports": []int{31000 + i}, "servicePorts": []int{}, "state": "TASK_RUNNING",
			"stagedAt": "2024-05-01T11:00:00.000Z", "startedAt": cliTestNow.Add(-time.Duration(i+1) * 90 * time.Second).Format(time.RFC3339Nano),
			"version": "2024-05-01T11:00:00.000Z",
		}
		if _, ok := a.def["healthChecks"]; ok {
			t["healthCheckResults"] = []any{map[string]any{"alive": i != 1, "consecutiveFailures": 0, "taskId": t["id"]}}
		}
		out = append(out, t)
	}
	return out
}

const fakeAgentsState = `{"version":"1.0.0","leader":"master@127.0.0.1:5050","slaves":[
 {"id":"agent-2","hostname":"node2","pid":"slave(1)@127.0.0.3:5051","resources":{"cpus":4,"mem":7800,"disk":10000,"ports":"[31000-32000, 33000-33100]"},
  "used_resources":{"cpus":0,"mem":0,"disk":0},"attributes":{},"active":false},
 {"id":"agent-1","hostname":"node1","pid":"slave(1)@127.0.0.2:5051","resources":{"cpus":4,"mem":7800,"disk":10000,"ports":"[31000-32000]"},
  "used_resources":{"cpus":0.2,"mem":64,"disk":0,"ports":"[31000-31001]"},"attributes":{"region":"eu-west","rack":3},"active":true,
  "usage":{"cpus":0.104,"mem":21.6,"timestamp":1764600000}}
]}`

// run runs one CLI entry point and returns exit code, stdout and stderr.
func runCLI(t *testing.T, fn func(context.Context, []string, io.Writer, io.Writer) int, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := fn(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func echoAppDef(instances int) map[string]any {
	return map[string]any{"id": "/demo/echo", "cmd": "python3 -m http.server $PORT0 --bind 0.0.0.0 --directory /srv/www/static/files",
		"instances": float64(instances), "cpus": 0.25, "mem": 64.0,
		"portDefinitions": []any{map[string]any{"port": 10000.0, "protocol": "tcp", "name": "http"}, map[string]any{"port": 10001.0}},
		"healthChecks":    []any{map[string]any{"protocol": "HTTP", "path": "/", "portIndex": 0.0, "intervalSeconds": 10.0}}}
}

func TestAppListTable(t *testing.T) {
	f := newFakeMarathon(t)
	f.addApp(echoAppDef(3), 2)
	f.addApp(map[string]any{"id": "/worker", "args": []any{"sleep", "1000"}, "instances": 1.0}, 1)
	f.deps = append(f.deps, &fakeDep{id: "d-9", appID: "/demo/echo"})
	f.stuck = true
	code, out, errs := runCLI(t, runApp, "list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := `ID          INSTANCES  HEALTHY  CPUS  MEM  PORTS        CMD                                       DEPLOYING
/demo/echo  2/3        2        0.25  64   10000,10001  python3 -m http.server $PORT0 --bind ...  yes
/worker     1/1        -        0.1   32   -            sleep 1000                                no
`
	if out != want {
		t.Errorf("table:\n%s\nwant:\n%s", out, want)
	}
	if q := f.requests()[0]; !strings.Contains(q, "embed=apps.tasks") {
		t.Errorf("request %q does not embed tasks", q)
	}
}

func TestAppListJSON(t *testing.T) {
	f := newFakeMarathon(t)
	f.addApp(echoAppDef(1), 1)
	code, out, errs := runCLI(t, runApp, "list", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var apps []map[string]any
	if err := json.Unmarshal([]byte(out), &apps); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(apps) != 1 || apps[0]["id"] != "/demo/echo" || apps[0]["extraServerField"] != "kept" {
		t.Errorf("apps %v", apps)
	}
}

func TestAppShow(t *testing.T) {
	f := newFakeMarathon(t)
	def := echoAppDef(2)
	def["constraints"] = []any{[]any{"hostname", "UNIQUE"}}
	def["labels"] = map[string]any{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "echo.example.com"}
	f.addApp(def, 2)
	code, out, errs := runCLI(t, runApp, "show", "demo/echo")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"ID:             /demo/echo\n",
		"INSTANCES:      2/2 running, 0 staged, 2 healthy, 0 unhealthy\n",
		"PORTS:          10000 (tcp, http), 10001\n",
		"CONSTRAINTS:    hostname:UNIQUE\n",
		"LABELS:         HAPROXY_0_VHOST=echo.example.com, HAPROXY_GROUP=external\n",
		"HEALTH CHECKS:  HTTP / portIndex 0 every 10s",
		"TASKS:\n",
		"ID                                              APP         HOST   PORTS  STATE    HEALTHY  STARTED\n",
		"demo_echo.00000000-0000-0000-0000-000000000000  /demo/echo  node1  31000  RUNNING  yes      1m ago\n",
		"demo_echo.00000001-0000-0000-0000-000000000000  /demo/echo  node2  31001  RUNNING  no       3m ago\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, runApp, "show", "/demo/echo", "--json")
	var app map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &app) != nil || app["id"] != "/demo/echo" {
		t.Errorf("show --json: exit %d\n%s", code, out)
	}
	f.addApp(map[string]any{"id": "/bridged", "instances": 1.0,
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "echo:1"},
			"portMappings": []any{map[string]any{"containerPort": 8080.0, "hostPort": 0.0, "servicePort": 10200.0, "protocol": "tcp", "name": "http"}}},
		"networks": []any{map[string]any{"mode": "container/bridge"}}}, 0)
	code, out, _ = runCLI(t, runApp, "show", "/bridged")
	for _, want := range []string{"IMAGE:          echo:1\n", "NETWORK:        container/bridge\n", "PORTS:          10200 (tcp, http)\n"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("bridged app: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	code, _, errs = runCLI(t, runApp, "show", "/nope")
	if code != 1 || errs != "atoll app show: App '/nope' does not exist (HTTP 404)\n" {
		t.Errorf("show unknown app: exit %d stderr %q", code, errs)
	}
}

func writeAppFile(t *testing.T, def string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.json")
	if err := os.WriteFile(p, []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDeployCreatesAndWaits(t *testing.T) {
	f := newFakeMarathon(t)
	file := writeAppFile(t, `{"id": "/echo", "cmd": "sleep 1000", "instances": 3}`)
	code, out, errs := runCLI(t, runApp, "deploy", "-f", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := `created app /echo (deployment d-1)
deploying /echo: 1/3 running
deploying /echo: 2/3 running
deploying /echo: 3/3 running
deployed /echo: 3/3 running
`
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	reqs := f.requests()
	if reqs[0] != "GET /v2/apps/echo?embed=app.tasks&embed=app.counts&embed=app.deployments" || reqs[1] != "POST /v2/apps" {
		t.Errorf("requests %v", reqs[:2])
	}
}

func TestDeployUpdatesExistingFromStdin(t *testing.T) {
	f := newFakeMarathon(t)
	f.addApp(map[string]any{"id": "/echo", "cmd": "sleep 1", "instances": 1.0}, 1)
	cliStdin = strings.NewReader(`{"id": "echo", "cmd": "sleep 2", "instances": 2}`)
	defer func() { cliStdin = os.Stdin }()
	code, out, errs := runCLI(t, runApp, "deploy", "-f", "-", "--force")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := `updated app /echo (deployment d-1, version 2024-05-01T12:00:01.000Z)
deploying /echo: 2/2 running
deployed /echo: 2/2 running
`
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	found := false
	for _, r := range f.requests() {
		if r == "PUT /v2/apps/echo?force=true" {
			found = true
		}
	}
	if !found {
		t.Errorf("no forced PUT in %v", f.requests())
	}
	if f.apps["/echo"].def["cmd"] != "sleep 2" {
		t.Errorf("app not updated: %v", f.apps["/echo"].def)
	}
}

func TestDeployProgressOnTerminal(t *testing.T) {
	newFakeMarathon(t)
	saved := isTerminal
	isTerminal = func(io.Writer) bool { return true }
	defer func() { isTerminal = saved }()
	file := writeAppFile(t, `{"id": "/echo", "cmd": "sleep 1000", "instances": 2}`)
	code, out, errs := runCLI(t, runApp, "deploy", "-f", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := "created app /echo (deployment d-1)\n" +
		"\rdeploying /echo: 1/2 running" +
		"\rdeploying /echo: 2/2 running" +
		"\rdeployed /echo: 2/2 running \n"
	if out != want {
		t.Errorf("output %q\nwant   %q", out, want)
	}
}

func TestDeployRetriesWhileMasterUnavailable(t *testing.T) {
	f := newFakeMarathon(t)
	f.fail503 = 2
	file := writeAppFile(t, `{"id": "/echo", "cmd": "sleep 1000", "instances": 1}`)
	code, out, errs := runCLI(t, runApp, "deploy", "-f", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := `created app /echo (deployment d-1)
deploying /echo: waiting for the master (retrying: no leader (HTTP 503))
deploying /echo: 1/1 running
deployed /echo: 1/1 running
`
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
}

func TestDeployInvalidApp(t *testing.T) {
	f := newFakeMarathon(t)
	file := writeAppFile(t, `{"id": "/Echo", "cmd": "sleep 1000", "mem": 1}`)
	code, out, errs := runCLI(t, runApp, "deploy", "-f", file)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	want := `atoll app deploy: Object is not valid (HTTP 422)
  /id: must be lower case
  /mem: got 1, expected 32 or more
`
	if errs != want || out != "" {
		t.Errorf("stderr:\n%s\nwant:\n%s\nstdout: %q", errs, want, out)
	}
	if len(f.apps) != 0 {
		t.Error("invalid app was created")
	}
}

func TestDeployBadFiles(t *testing.T) {
	newFakeMarathon(t)
	for _, tc := range []struct{ def, want string }{
		{`{"id": "/echo",`, "invalid JSON"},
		{`{"cmd": "sleep 1"}`, `needs an "id"`},
		{`[{"id": "/echo"}]`, "not a JSON app definition"},
	} {
		code, _, errs := runCLI(t, runApp, "deploy", "-f", writeAppFile(t, tc.def))
		if code != 1 || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d stderr %q, want %q", tc.def, code, errs, tc.want)
		}
	}
	if code, _, errs := runCLI(t, runApp, "deploy", "-f", "/nonexistent/app.json"); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: exit %d %q", code, errs)
	}
	if code, _, _ := runCLI(t, runApp, "deploy"); code != 2 {
		t.Errorf("deploy without -f: exit %d, want 2", code)
	}
}

func TestDeployDetach(t *testing.T) {
	f := newFakeMarathon(t)
	file := writeAppFile(t, `{"id": "/echo", "cmd": "sleep 1000", "instances": 3}`)
	code, out, errs := runCLI(t, runApp, "deploy", "--detach", "-f", file)
	if code != 0 || out != "created app /echo (deployment d-1)\n" {
		t.Fatalf("exit %d out %q err %q", code, out, errs)
	}
	for _, r := range f.requests() {
		if strings.Contains(r, "/v2/deployments") {
			t.Errorf("--detach polled: %v", f.requests())
		}
	}
}

func TestScaleRestartDelete(t *testing.T) {
	f := newFakeMarathon(t)
	f.addApp(map[string]any{"id": "/echo", "cmd": "sleep 1000", "instances": 1.0}, 1)

	// Flags may follow the arguments.
	code, out, errs := runCLI(t, runApp, "scale", "/echo", "3", "--timeout", "10s")
	wantScale := `scaling app /echo to 3 instances (deployment d-1, version 2024-05-01T12:00:01.000Z)
scaling /echo: 2/3 running
scaling /echo: 3/3 running
scaled /echo: 3/3 running
`
	if code != 0 || out != wantScale {
		t.Errorf("scale: exit %d %s\n%s\nwant:\n%s", code, errs, out, wantScale)
	}

	code, out, errs = runCLI(t, runApp, "restart", "echo")
	wantRestart := `restarting app /echo (deployment d-2, version 2024-05-01T12:00:02.000Z)
restarting /echo: 1/3 running
restarting /echo: 2/3 running
restarting /echo: 3/3 running
restarted /echo: 3/3 running
`
	if code != 0 || out != wantRestart {
		t.Errorf("restart: exit %d %s\n%s\nwant:\n%s", code, errs, out, wantRestart)
	}

	code, out, errs = runCLI(t, runApp, "delete", "/echo")
	wantDelete := `deleting app /echo (deployment d-3, version 2024-05-01T12:00:03.000Z)
deleting /echo: app removed, stopping its tasks
deleted /echo
`
	if code != 0 || out != wantDelete {
		t.Errorf("delete: exit %d %s\n%s\nwant:\n%s", code, errs, out, wantDelete)
	}
	if _, ok := f.apps["/echo"]; ok {
		t.Error("app still there after delete finished")
	}
}

func TestScaleLockedAndTimeout(t *testing.T) {
	f := newFakeMarathon(t)
	f.addApp(map[string]any{"id": "/echo", "cmd": "sleep 1000", "instances": 1.0}, 1)
	f.stuck = true
	code, out, errs := runCLI(t, runApp, "scale", "/echo", "2", "--timeout", "50ms")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.HasPrefix(out, "scaling app /echo to 2 instances (deployment d-1") || !strings.Contains(out, "scaling /echo: 1/2 running\n") {
		t.Errorf("stdout %q", out)
	}
	if !strings.Contains(errs, "timed out after 50ms waiting for deployment d-1 of /echo; last seen: 1/2 running; it goes on in the master") {
		t.Errorf("stderr %q", errs)
	}

	// The deployment still holds the app: 409 with a hint, unless --force.
	code, _, errs = runCLI(t, runApp, "scale", "/echo", "3", "--detach")
	if code != 1 || !strings.Contains(errs, "(HTTP 409)") || !strings.Contains(errs, "locked by deployment d-1; add --force") {
		t.Errorf("locked: exit %d stderr %q", code, errs)
	}
	if code, _, errs = runCLI(t, runApp, "scale", "/echo", "3", "--detach", "--force"); code != 0 {
		t.Errorf("forced: exit %d stderr %q", code, errs)
	}
}

func TestTaskList(t *testing.T) {
	f := newFakeMarathon(t)
	f.addApp(echoAppDef(2), 2)
	f.addApp(map[string]any{"id": "/worker", "cmd": "sleep 1000", "instances": 1.0}, 1)
	code, out, errs := runCLI(t, runTask, "list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := `ID                                              APP         HOST   PORTS  STATE    HEALTHY  STARTED
demo_echo.00000000-0000-0000-0000-000000000000  /demo/echo  node1  31000  RUNNING  yes      1m ago
demo_echo.00000001-0000-0000-0000-000000000000  /demo/echo  node2  31001  RUNNING  no       3m ago
worker.00000000-0000-0000-0000-000000000000     /worker     node1  31000  RUNNING  -        1m ago
`
	if out != want {
		t.Errorf("table:\n%s\nwant:\n%s", out, want)
	}
	code, out, _ = runCLI(t, runTask, "list", "--app", "worker")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "worker.0000") {
		t.Errorf("--app: exit %d\n%s", code, out)
	}
	if r := f.requests(); r[len(r)-1] != "GET /v2/apps/worker/tasks" {
		t.Errorf("--app asked %q", r[len(r)-1])
	}
	code, out, _ = runCLI(t, runTask, "list", "--app", "/worker", "--json")
	var tasks []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &tasks) != nil || len(tasks) != 1 || tasks[0]["slaveId"] != "agent-1" {
		t.Errorf("--json: exit %d\n%s", code, out)
	}
	if code, _, errs := runCLI(t, runTask, "list", "--app", "/nope"); code != 1 || !strings.Contains(errs, "does not exist") {
		t.Errorf("unknown app: exit %d %q", code, errs)
	}
}

func TestAgents(t *testing.T) {
	newFakeMarathon(t)
	code, out, errs := runCLI(t, runAgents)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// CPU USE and MEM USE: what the tasks use, from their cgroups, next
	// to what they were allocated.
	want := `ID       HOSTNAME  IP         STATE     CPUS   CPU USE  MEM      MEM USE  PORTS                    ATTRIBUTES
agent-1  node1     127.0.0.2  active    0.2/4  0.10     64/7800  21.6     31000-32000              rack=3,region=eu-west
agent-2  node2     127.0.0.3  inactive  0/4    -        0/7800   -        31000-32000,33000-33100  -
`
	if out != want {
		t.Errorf("table:\n%s\nwant:\n%s", out, want)
	}
	code, out, _ = runCLI(t, runAgents, "--json")
	var agents []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &agents) != nil || len(agents) != 2 || agents[0]["pid"] != "slave(1)@127.0.0.2:5051" {
		t.Errorf("--json: exit %d\n%s", code, out)
	}
}

func TestMasterURLAndBasicAuth(t *testing.T) {
	f := newFakeMarathon(t)
	f.user, f.pass = "ops", "pa:ss"
	code, _, errs := runCLI(t, runAgents)
	if code != 1 || !strings.Contains(errs, "Invalid username or password. (HTTP 401)") || !strings.Contains(errs, "user:pass") {
		t.Errorf("without credentials: exit %d %q", code, errs)
	}
	withAuth := strings.Replace(f.srv.URL, "http://", "http://ops:pa%3Ass@", 1)
	if code, _, errs := runCLI(t, runAgents, "--master", withAuth); code != 0 {
		t.Errorf("--master with credentials: exit %d %q", code, errs)
	}
	t.Setenv("ATOLL_MASTER", withAuth)
	if code, _, errs := runCLI(t, runApp, "list"); code != 0 {
		t.Errorf("ATOLL_MASTER with credentials: exit %d %q", code, errs)
	}
	// An unreachable master is an error, not a hang or a panic.
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	if code, _, errs := runCLI(t, runTask, "list", "--master", srv.URL); code != 1 || !strings.Contains(errs, "atoll task list: GET ") {
		t.Errorf("unreachable master: exit %d %q", code, errs)
	}
}

func TestUsage(t *testing.T) {
	newFakeMarathon(t)
	for _, tc := range []struct {
		fn   func(context.Context, []string, io.Writer, io.Writer) int
		args []string
		code int
	}{
		{runApp, nil, 2},
		{runApp, []string{"frobnicate"}, 2},
		{runApp, []string{"help"}, 0},
		{runApp, []string{"show"}, 2},
		{runApp, []string{"show", "a", "b"}, 2},
		{runApp, []string{"scale", "/echo"}, 2},
		{runApp, []string{"scale", "/echo", "many"}, 2},
		{runApp, []string{"list", "--bogus"}, 2},
		{runApp, []string{"list", "-h"}, 0},
		{runTask, nil, 2},
		{runTask, []string{"list", "extra"}, 2},
		{runAgents, []string{"extra"}, 2},
	} {
		if code, _, _ := runCLI(t, tc.fn, tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.args, code, tc.code)
		}
	}
}

func TestParseArgsDoubleDash(t *testing.T) {
	fs, _ := newFlagSet("x", "x", io.Discard)
	force := fs.Bool("force", false, "")
	pos, err := parseArgs(fs, []string{"a", "--force", "--", "--b", "c"})
	if err != nil || !*force || strings.Join(pos, " ") != "a --b c" {
		t.Errorf("pos %q force %v err %v", pos, *force, err)
	}
}

// TestRestartFailedDeploymentExitsNonZero: when the master halts a
// deployment (its new tasks keep failing), the command stops waiting and
// says why.
func TestRestartFailedDeploymentExitsNonZero(t *testing.T) {
	f := newFakeMarathon(t)
	f.addApp(echoAppDef(2), 2)
	f.halted = "3 tasks of the new version failed in a row and none became ready"
	code, _, errs := runCLI(t, runApp, "restart", "/demo/echo", "--timeout", "10s")
	if code != 1 || !strings.Contains(errs, "deployment d-1 of /demo/echo failed: 3 tasks of the new version failed in a row") {
		t.Fatalf("exit %d, stderr %q; want 1 and the reason", code, errs)
	}
}

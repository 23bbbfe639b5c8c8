package master

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/appdef/outputs.jsonl from the current code")

// goldenApps are app definitions as clients send them, covering every
// field and the shapes each output has for it. Their outputs were written
// before the app schema (appdef_schema.go) replaced the hand-written
// views, and must stay byte for byte what they were.
var goldenApps = []struct{ name, body string }{
	{"minimal", `{"id":"/min","cmd":"sleep 1"}`},
	{"args", `{"id":"/g/args","args":["/bin/sh","-c","exec sleep 100"],"user":"nobody","instances":3}`},
	{"resources", `{"id":"/res","cmd":"x","cpus":0.25,"mem":64.5,"disk":10,"instances":0,"requirePorts":true,
		"portDefinitions":[{"port":10001,"name":"http","labels":{"VIP_0":"/res:80"}},{"port":0,"protocol":"udp"},{"port":10003,"protocol":"udp,tcp","name":"dns"}]}`},
	{"legacy ports", `{"id":"/ports","cmd":"x","ports":[10010,0,10012]}`},
	{"no ports", `{"id":"/noports","cmd":"x","portDefinitions":[]}`},
	{"constraints and labels", `{"id":"/c","cmd":"x","constraints":[["hostname","UNIQUE"],["rack","GROUP_BY","3"],["zone","LIKE","eu-.*"]],
		"labels":{"HAPROXY_GROUP":"external","HAPROXY_0_VHOST":"web.example.com","empty":""}}`},
	{"env", `{"id":"/env","cmd":"x","env":{"DB_PASSWORD":"s3cr3t \"quoted\" <&>","TOKEN":"abc\u00e9\u2028","EMPTY":""}}`},
	{"health checks", `{"id":"/hc","cmd":"x","portDefinitions":[{"port":0},{"port":0}],"healthChecks":[
		{"path":"/health"},
		{"protocol":"TCP","portIndex":1,"gracePeriodSeconds":5,"intervalSeconds":2,"timeoutSeconds":1,"maxConsecutiveFailures":0,"delaySeconds":0},
		{"protocol":"COMMAND","command":{"value":"test -f /tmp/ok"}},
		{"protocol":"MESOS_HTTPS","port":8443,"ignoreHttp1xx":true}]}`},
	{"upgrade and backoff", `{"id":"/up","cmd":"x","upgradeStrategy":{"minimumHealthCapacity":0.5,"maximumOverCapacity":0.2},
		"backoffSeconds":3,"backoffFactor":2,"maxLaunchDelaySeconds":60,"taskKillGracePeriodSeconds":7.5,"killSelection":"OLDEST_FIRST"}`},
	{"single instance", `{"id":"/one","cmd":"x","labels":{"MARATHON_SINGLE_INSTANCE_APP":"true"},"upgradeStrategy":{"minimumHealthCapacity":0,"maximumOverCapacity":0}}`},
	{"dependencies", `{"id":"/g/web","cmd":"x","dependencies":["/g/db","../cache","/other"]}`},
	{"fetch", `{"id":"/fetch","cmd":"./run","fetch":[{"uri":"http://127.0.0.1/a.tgz"},{"uri":"http://127.0.0.1/run","executable":true,"extract":false,"cache":true,"destPath":"bin/run"}]}`},
	{"uris", `{"id":"/uris","cmd":"./run","uris":["http://127.0.0.1/a.tgz","http://127.0.0.1/b.zip","http://127.0.0.1/c"]}`},
	{"readiness", `{"id":"/ready","cmd":"x","portDefinitions":[{"port":0,"name":"http"}],"readinessChecks":[{"name":"r","portName":"http","path":"/ready","intervalSeconds":5,"timeoutSeconds":2,"httpStatusCodesForReady":[200,204],"preserveLastResponse":false}]}`},
	{"unreachable", `{"id":"/unr","cmd":"x","unreachableStrategy":{"inactiveAfterSeconds":30,"expungeAfterSeconds":600}}`},
	{"unreachable disabled", `{"id":"/unrd","cmd":"x","unreachableStrategy":"disabled"}`},
	{"docker host", `{"id":"/dh","container":{"type":"DOCKER","docker":{"image":"127.0.0.1:5000/echo:1","forcePullImage":true,
		"parameters":[{"key":"cap-add","value":"NET_ADMIN"},{"key":"env","value":"A=b"}]},
		"volumes":[{"containerPath":"/data","hostPath":"/var/data","mode":"RW"},{"containerPath":"/cache","hostPath":"cache","mode":"RO"}]},
		"portDefinitions":[{"port":10020}]}`},
	{"bridged", `{"id":"/br","container":{"type":"DOCKER","docker":{"image":"127.0.0.1:5000/echo:1"},
		"portMappings":[{"containerPort":8080,"hostPort":0,"servicePort":10030,"name":"http","labels":{"VIP_0":"/br:8080"}},{"containerPort":53,"hostPort":31053,"protocol":"udp"}]},
		"networks":[{"mode":"container/bridge"}],"healthChecks":[{"portIndex":1,"protocol":"TCP"}]}`},
	{"bridged default mapping", `{"id":"/brd","cmd":"serve","container":{"type":"MESOS","docker":{"image":"busybox"}},"networks":[{"mode":"container/bridge"}]}`},
	{"legacy docker network", `{"id":"/ld","container":{"docker":{"image":"x","network":"BRIDGE","portMappings":[{"containerPort":80}]}}}`},
	{"host network named", `{"id":"/hn","cmd":"x","networks":[{"mode":"host"}]}`},
}

// goldenVersion is when every golden app was last changed.
var goldenVersion = time.Date(2026, 12, 3, 1, 2, 3, 456789000, time.UTC)

// goldenOutputs is each golden app's /v2/apps view (with task counts and
// a deployment) and its event view, one JSON object a line.
func goldenOutputs(t *testing.T) []byte {
	t.Helper()
	var out bytes.Buffer
	for i, g := range goldenApps {
		a, err := appForCreate([]byte(g.body), testLimits)
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		a.Version = goldenVersion.Add(time.Duration(i) * time.Second)
		a.VersionInfo = events.VersionInfo{LastScalingAt: a.Version, LastConfigChangeAt: goldenVersion}
		counts := events.TaskCounts{Staged: i % 2, Running: i, Healthy: i / 2, Unhealthy: i % 3}
		deps := []events.Deployment{{ID: "dep-1", CurrentActions: []events.DeploymentAction{{Action: "StartApplication", App: a.ID, Waiting: "no agent offers enough memory"}}}}
		api, err := json.Marshal(appViewFrom(a, counts, deps, nil, false))
		if err != nil {
			t.Fatalf("%s: api view: %v", g.name, err)
		}
		ev, err := json.Marshal(appDefinitionOf(a))
		if err != nil {
			t.Fatalf("%s: event view: %v", g.name, err)
		}
		rec, _ := json.Marshal(a) // the record on NATS and on disk
		line, _ := json.Marshal(struct {
			Name   string          `json:"name"`
			Record json.RawMessage `json:"record"`
			API    json.RawMessage `json:"api"`
			Event  json.RawMessage `json:"event"`
		}{g.name, rec, api, ev})
		out.Write(line)
		out.WriteByte('\n')
	}
	// Updates: each golden app under PUT (partial and not) of a few
	// bodies, and the 400s and 422s of bad ones.
	for _, u := range goldenUpdates {
		for _, g := range goldenApps {
			base, _ := appForCreate([]byte(g.body), testLimits)
			for _, partial := range []bool{true, false} {
				a, err := appForUpdate(base.ID, &base, []byte(u), partial, testLimits)
				var res any = a
				if err != nil {
					res = errorShape(err)
				}
				line, _ := json.Marshal(struct {
					Name    string `json:"name"`
					Update  string `json:"update"`
					Partial bool   `json:"partial"`
					Result  any    `json:"result"`
				}{g.name, u, partial, res})
				out.Write(line)
				out.WriteByte('\n')
			}
		}
	}
	for _, body := range goldenBad {
		_, err := appForCreate([]byte(body), testLimits)
		line, _ := json.Marshal(struct {
			Create string `json:"create"`
			Result any    `json:"result"`
		}{body, errorShape(err)})
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// errorShape is an error as the API shows it, its details in path order:
// Marathon's clients read them by path, and which path fails first is not
// part of the answer. Each path's messages keep their order.
func errorShape(err error) any {
	byPath := func(d []FieldErrors) []FieldErrors {
		d = slices.Clone(d)
		slices.SortStableFunc(d, func(a, b FieldErrors) int { return strings.Compare(a.Path, b.Path) })
		return d
	}
	switch e := err.(type) {
	case *InvalidJSONError:
		return map[string]any{"status": 400, "message": e.Message, "details": byPath(e.Details)}
	case *ValidationError:
		return map[string]any{"status": 422, "details": byPath(e.Details)}
	case nil:
		return "accepted"
	}
	return err.Error()
}

// goldenUpdates are PUT bodies applied to every golden app.
var goldenUpdates = []string{
	`{}`,
	`{"instances":2}`,
	`{"cmd":"new"}`,
	`{"args":["a","b"]}`,
	`{"cmd":"c","portDefinitions":[{"port":10099}],"labels":{"x":"y"},"env":{"A":"1"}}`,
	`{"ports":[0,0]}`,
	`{"container":{"docker":{"image":"img"}},"networks":[{"mode":"container/bridge"}]}`,
	`{"networks":[{"mode":"host"}]}`,
	`{"container":null,"healthChecks":[{"protocol":"TCP","portIndex":2}]}`,
	`{"unreachableStrategy":"disabled","killSelection":"YOUNGEST_FIRST","fetch":[]}`,
	`{"uris":["http://127.0.0.1/z"],"dependencies":["/x"],"readinessChecks":[]}`,
	`{"upgradeStrategy":{"minimumHealthCapacity":0.1},"backoffFactor":1.5,"requirePorts":false}`,
}

// goldenBad are POST bodies the API refuses.
var goldenBad = []string{
	``, `[`, `[]`, `{"cmd":"x"}`, `{"id":"/a"}`, `{"id":"/a","cmd":1,"instances":"2","cpus":[],"labels":{"a":1},"env":[]}`,
	`{"id":"/a","cmd":"x","instances":-1,"cpus":-1,"mem":-2,"disk":-3,"backoffFactor":0.5,"backoffSeconds":-1}`,
	`{"id":"/a","cmd":"x","instances":1.5}`,
	`{"id":"/a","cmd":"x","portDefinitions":[{"port":1},{"port":1},{"port":70000,"protocol":"sctp"}]}`,
	`{"id":"/a","cmd":"x","ports":[1],"portDefinitions":[{"port":2}]}`,
	`{"id":"/a","cmd":"x","healthChecks":[{"portIndex":3},{"protocol":"COMMAND"},{"protocol":"X","command":{"value":"y"},"port":1,"portIndex":0}]}`,
	`{"id":"/a","cmd":"x","env":{"S":{"secret":"s"},"A=B":"c","":"d"},"labels":{"MARATHON_SINGLE_INSTANCE_APP":"true"},"instances":2}`,
	`{"id":"/a","cmd":"x","killSelection":"RANDOM","constraints":[["host","NOPE"]],"dependencies":["bad id!"]}`,
	`{"id":"/a","cmd":"x","fetch":[{"uri":"http://x"}],"uris":["http://y"]}`,
	`{"id":"/a","cmd":"x","readinessChecks":[{"portName":"nope"},{}]}`,
	`{"id":"/a","cmd":"x","unreachableStrategy":{"inactiveAfterSeconds":-1,"expungeAfterSeconds":0}}`,
	`{"id":"/a","cmd":"x","unreachableStrategy":"sometimes"}`,
	`{"id":"/a","cmd":"x","upgradeStrategy":{"minimumHealthCapacity":2,"maximumOverCapacity":-1}}`,
	`{"id":"/a","cmd":"x","ipAddress":{"networkName":"n"},"gpus":1,"gpus2":0,"role":"*","tty":false,"executor":"//cmd","versionInfo":{},"tasksRunning":3}`,
	`{"id":"/a","container":{"docker":{"image":""}},"networks":[{"mode":"container"},{"mode":"x","name":"n"}]}`,
	`{"id":"/a","container":{"type":"APPC","docker":{"image":"i","privileged":true,"parameters":[{"key":"device","value":"x"}]},"volumes":[{"containerPath":"../x","hostPath":"","mode":"RX"}],"portMappings":[{"containerPort":1}]}}`,
	`{"id":"/a","cmd":"x","networks":[{"mode":"container/bridge"}],"requirePorts":true,"portDefinitions":[{"port":1}]}`,
	`{"id":"/a","cmd":"x\u0000","args":["y\u0000"]}`,
	`{"id":"/a/restart","cmd":"x"}`,
	`{"id":"/a","cmd":"x","taskKillGracePeriodSeconds":-1,"maxLaunchDelaySeconds":-1}`,
}

// The outputs of an app are what they were when the golden file was
// written (go test ./master -run TestAppOutputsGolden -update rewrites
// it, for a change of output meant as one).
func TestAppOutputsGolden(t *testing.T) {
	path := filepath.Join("testdata", "appdef", "outputs.jsonl")
	got := goldenOutputs(t)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gotLines, wantLines := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	if len(gotLines) != len(wantLines) {
		t.Fatalf("%d outputs, golden has %d", len(gotLines), len(wantLines))
	}
	for i := range gotLines {
		if !bytes.Equal(gotLines[i], wantLines[i]) {
			t.Errorf("output %d differs:\n got %s\nwant %s", i, gotLines[i], wantLines[i])
		}
	}
}

// BenchmarkAppOutputs times the two outputs of one app, uncached, as the
// read view and the event stream make them, over the golden apps and
// some of the bench state's (ns/op is per app; cpu-ns/op is the
// process's CPU, which the neighbours on a shared machine disturb less).
func BenchmarkAppOutputs(b *testing.B) {
	var apps []*events.App
	for _, g := range goldenApps {
		a, err := appForCreate([]byte(g.body), testLimits)
		if err != nil {
			b.Fatal(err)
		}
		a.Version, a.VersionInfo = goldenVersion, events.VersionInfo{LastScalingAt: goldenVersion, LastConfigChangeAt: goldenVersion}
		apps = append(apps, &a)
	}
	for _, a := range benchState().SortedApps()[:200] {
		apps = append(apps, &a)
	}
	counts := events.TaskCounts{Running: 3}
	for _, view := range []struct {
		name   string
		encode func(*events.App) ([]byte, error)
	}{
		{"api view", func(a *events.App) ([]byte, error) { return json.Marshal(appViewOfApp(a, counts, nil, nil, false)) }},
		{"event view", func(a *events.App) ([]byte, error) { return json.Marshal(appEventViewOf(a)) }},
	} {
		b.Run(view.name, func(b *testing.B) {
			i, start := 0, cpuNow()
			for b.Loop() {
				if _, err := view.encode(apps[i%len(apps)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(cpuNow()-start)/float64(b.N), "cpu-ns/op")
		})
	}
	b.Run("decode and validate", func(b *testing.B) {
		i, start := 0, cpuNow()
		for b.Loop() {
			if _, err := appForCreate([]byte(goldenApps[i%len(goldenApps)].body), testLimits); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(cpuNow()-start)/float64(b.N), "cpu-ns/op")
	})
}

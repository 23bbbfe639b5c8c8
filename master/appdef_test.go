package master

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

func intp(i int) *int { return &i }

// wantDetail checks that err is the 400 (InvalidJSONError) or the 422
// (ValidationError) with msg among the errors for path.
func wantDetail(t *testing.T, err error, status int, path, msg string) {
	t.Helper()
	var details []FieldErrors
	var bad *InvalidJSONError
	var invalid *ValidationError
	switch {
	case errors.As(err, &bad) && status == 400:
		details = bad.Details
	case errors.As(err, &invalid) && status == 422:
		details = invalid.Details
	default:
		t.Fatalf("err = %#v (%v), want a %d", err, err, status)
	}
	for _, d := range details {
		if d.Path == path {
			for _, e := range d.Errors {
				if strings.Contains(e, msg) {
					return
				}
			}
		}
	}
	t.Fatalf("details %+v lack %s: %q", details, path, msg)
}

func TestAppForCreateDefaults(t *testing.T) {
	hcDefaults := events.HealthCheck{Protocol: "HTTP", Path: "/", PortIndex: intp(0),
		GracePeriodSeconds: 300, IntervalSeconds: 60, TimeoutSeconds: 20, MaxConsecutiveFailures: 3, DelaySeconds: 15}
	withDefaults := func(f func(a *events.App)) events.App {
		a := defaultApp("/web")
		a.Cmd = "sleep 1"
		f(&a)
		return a
	}
	tests := []struct {
		name string
		body string
		want events.App
	}{
		{"minimal", `{"id":"web","cmd":"sleep 1"}`, withDefaults(func(a *events.App) {})},
		{"marathon defaults spelled out", `{"id":"/web/","cmd":"sleep 1","instances":1,"cpus":1,"mem":128,"disk":0,
			"backoffSeconds":1,"backoffFactor":1.15,"maxLaunchDelaySeconds":3600,"upgradeStrategy":{"minimumHealthCapacity":1,"maximumOverCapacity":1},
			"requirePorts":false,"constraints":[],"labels":{},"env":{},"healthChecks":[]}`,
			withDefaults(func(a *events.App) {})},
		{"nulls are absent", `{"id":"web","cmd":"sleep 1","instances":null,"labels":null}`, withDefaults(func(a *events.App) {})},
		{"legacy ports", `{"id":"web","cmd":"sleep 1","ports":[0,8080]}`, withDefaults(func(a *events.App) {
			a.PortDefinitions = []events.PortDefinition{{Port: 0, Protocol: "tcp"}, {Port: 8080, Protocol: "tcp"}}
		})},
		{"no ports", `{"id":"web","cmd":"sleep 1","portDefinitions":[]}`, withDefaults(func(a *events.App) {
			a.PortDefinitions = []events.PortDefinition{}
		})},
		{"ports equal to portDefinitions", `{"id":"web","cmd":"sleep 1","ports":[10001],"portDefinitions":[{"port":10001,"name":"http"}]}`,
			withDefaults(func(a *events.App) {
				a.PortDefinitions = []events.PortDefinition{{Port: 10001, Protocol: "tcp", Name: "http"}}
			})},
		{"port definitions", `{"id":"web","cmd":"sleep 1","portDefinitions":[{"port":0,"name":"http","labels":{"VIP_0":"x"}},{"port":9000,"protocol":"udp,tcp"}]}`,
			withDefaults(func(a *events.App) {
				a.PortDefinitions = []events.PortDefinition{
					{Port: 0, Protocol: "tcp", Name: "http", Labels: map[string]string{"VIP_0": "x"}},
					{Port: 9000, Protocol: "udp,tcp"},
				}
			})},
		{"everything", `{"id":"/g/web","args":["/bin/web","-p"],"user":"nobody","instances":3,"cpus":0.25,"mem":64,"disk":10,
			"requirePorts":true,"constraints":[["hostname","UNIQUE"]],"labels":{"HAPROXY_GROUP":"external"},"env":{"A":"b"},
			"upgradeStrategy":{"minimumHealthCapacity":0.5},"backoffSeconds":2,"backoffFactor":2,"maxLaunchDelaySeconds":60,
			"taskKillGracePeriodSeconds":5}`,
			func() events.App {
				a := defaultApp("/g/web")
				a.Args, a.User, a.Instances, a.Cpus, a.Mem, a.Disk = []string{"/bin/web", "-p"}, "nobody", 3, 0.25, 64, 10
				a.RequirePorts, a.Constraints = true, [][]string{{"hostname", "UNIQUE"}}
				a.Labels, a.Env = map[string]string{"HAPROXY_GROUP": "external"}, map[string]string{"A": "b"}
				a.UpgradeStrategy = events.UpgradeStrategy{MinimumHealthCapacity: 0.5, MaximumOverCapacity: 1}
				a.BackoffSeconds, a.BackoffFactor, a.MaxLaunchDelaySeconds, a.TaskKillGracePeriodSeconds = 2, 2, 60, 5
				return a
			}()},
		{"health check defaults", `{"id":"web","cmd":"sleep 1","healthChecks":[{}]}`, withDefaults(func(a *events.App) {
			a.HealthChecks = []events.HealthCheck{hcDefaults}
		})},
		{"tcp health check on a port", `{"id":"web","cmd":"sleep 1","healthChecks":[{"protocol":"TCP","port":8080,"intervalSeconds":5}]}`,
			withDefaults(func(a *events.App) {
				hc := hcDefaults
				hc.Protocol, hc.Path, hc.PortIndex, hc.Port, hc.IntervalSeconds = "TCP", "", nil, intp(8080), 5
				a.HealthChecks = []events.HealthCheck{hc}
			})},
		{"command health check", `{"id":"web","cmd":"sleep 1","healthChecks":[{"command":{"value":"true"}}]}`,
			withDefaults(func(a *events.App) {
				hc := hcDefaults
				hc.Protocol, hc.Path, hc.PortIndex = "COMMAND", "", nil
				hc.Command = &struct {
					Value string `json:"value"`
				}{Value: "true"}
				a.HealthChecks = []events.HealthCheck{hc}
			})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appForCreate([]byte(tt.body), testLimits)
			if err != nil {
				t.Fatalf("appForCreate: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestAppForCreateErrors(t *testing.T) {
	const ok = `"id":"web","cmd":"sleep 1"`
	tests := []struct {
		name   string
		body   string
		status int
		path   string
		msg    string
	}{
		{"not json", `{"id":`, 400, "/", "unexpected end of JSON input"},
		{"garbage", `id=web`, 400, "/", "invalid character"},
		{"empty body", ` `, 400, "/", noContentDetails},
		{"array body", `[]`, 400, "/", errExpObject},
		{"null body", `null`, 400, "/", errExpObject},
		{"missing id", `{"cmd":"sleep 1"}`, 400, "/id", errPathMissing},
		{"id not a string", `{"id":123,"cmd":"x y"}`, 400, "/id", errExpString},
		{"instances a string", `{` + ok + `,"instances":"3"}`, 400, "/instances", errExpNumber},
		{"instances fractional", `{` + ok + `,"instances":1.5}`, 400, "/instances", errExpInt},
		{"cpus a bool", `{` + ok + `,"cpus":true}`, 400, "/cpus", errExpNumber},
		{"args not strings", `{"id":"web","args":["a",1]}`, 400, "/args(1)", errExpString},
		{"port not a number", `{` + ok + `,"portDefinitions":[{"port":80},{"port":"a"}]}`, 400, "/portDefinitions(1)/port", errExpNumber},
		{"ports not an array", `{` + ok + `,"ports":80}`, 400, "/ports", errExpArray},
		{"labels values", `{` + ok + `,"labels":{"a":1}}`, 400, "/labels/a", errExpString},
		{"env number", `{` + ok + `,"env":{"FOO":1}}`, 400, "/env/FOO", errExpString},
		{"constraint not strings", `{` + ok + `,"constraints":[["hostname",1]]}`, 400, "/constraints(0)(1)", errExpString},
		{"health check field", `{` + ok + `,"healthChecks":[{"portIndex":"0"}]}`, 400, "/healthChecks(0)/portIndex", errExpNumber},
		{"requirePorts", `{` + ok + `,"requirePorts":"yes"}`, 400, "/requirePorts", errExpBool},
		{"upgrade strategy", `{` + ok + `,"upgradeStrategy":[]}`, 400, "/upgradeStrategy", errExpObject},

		{"env secret", `{` + ok + `,"env":{"PW":{"secret":"pw"}}}`, 422, "/env/PW", msgSecretEnv},
		{"bad id", `{"id":"/My_App","cmd":"x y"}`, 422, "/id", "must fully match regular expression"},
		{"root id", `{"id":"/","cmd":"x y"}`, 422, "/id", msgEmptyPath},
		{"empty id", `{"id":"","cmd":"x y"}`, 422, "/id", msgEmptyPath},
		{"dot id", `{"id":"/a/../b","cmd":"x y"}`, 422, "/id", msgDotSegment},
		{"reserved id", `{"id":"/a/tasks","cmd":"x y"}`, 422, "/id", msgReservedID},
		{"neither cmd nor args", `{"id":"web"}`, 422, "/", msgCmdOrArgs},
		{"both cmd and args", `{"id":"web","cmd":"x y","args":["x"]}`, 422, "/", msgCmdOrArgs},
		{"negative instances", `{` + ok + `,"instances":-1}`, 422, "/instances", "got -1, expected 0 or more"},
		{"negative cpus", `{` + ok + `,"cpus":-0.5}`, 422, "/cpus", "got -0.5, expected 0.0 or more"},
		{"negative mem", `{` + ok + `,"mem":-1}`, 422, "/mem", "got -1.0, expected 0.0 or more"},
		{"negative disk", `{` + ok + `,"disk":-1}`, 422, "/disk", "expected 0.0 or more"},
		{"backoff factor", `{` + ok + `,"backoffFactor":0.5}`, 422, "/backoffFactor", "got 0.5, expected 1.0 or more"},
		{"backoff seconds", `{` + ok + `,"backoffSeconds":-1}`, 422, "/backoffSeconds", "got -1, expected 0 or more"},
		{"capacity", `{` + ok + `,"upgradeStrategy":{"minimumHealthCapacity":1.5}}`, 422,
			"/upgradeStrategy/minimumHealthCapacity", "got 1.5, expected between 0.0 and 1.0"},
		{"over capacity", `{` + ok + `,"upgradeStrategy":{"maximumOverCapacity":-0.1}}`, 422,
			"/upgradeStrategy/maximumOverCapacity", "got -0.1, expected between 0.0 and 1.0"},
		{"duplicate ports", `{` + ok + `,"ports":[80,80]}`, 422, "/portDefinitions", msgPortsUnique},
		{"port range", `{` + ok + `,"portDefinitions":[{"port":70000}]}`, 422, "/portDefinitions(0)/port", "got 70000, expected between 0 and 65535"},
		{"duplicate names", `{` + ok + `,"portDefinitions":[{"name":"a"},{"name":"a"}]}`, 422, "/portDefinitions", msgPortNames},
		{"protocol", `{` + ok + `,"portDefinitions":[{"protocol":"sctp"}]}`, 422, "/portDefinitions(0)/protocol", msgProtocol},
		{"ports and definitions", `{` + ok + `,"ports":[1],"portDefinitions":[{"port":2}]}`, 422, "/", msgPortsAndDefs},
		{"constraint operator", `{` + ok + `,"constraints":[["hostname","UNIQUE"],["hostname","BOGUS"]]}`, 422, "/constraints(1)", "operator"},
		{"constraint fields", `{` + ok + `,"constraints":[["hostname"]]}`, 422, "/constraints(0)", "2 or 3 fields"},
		{"health protocol", `{` + ok + `,"healthChecks":[{"protocol":"FTP"}]}`, 422, "/healthChecks(0)/protocol", "expected one of"},
		{"command check without command", `{` + ok + `,"healthChecks":[{"protocol":"COMMAND"}]}`, 422, "/healthChecks(0)/command", msgHCCommand},
		{"command on http check", `{` + ok + `,"healthChecks":[{"protocol":"HTTP","command":{"value":"x"}}]}`, 422, "/healthChecks(0)/command", msgHCNoCommand},
		{"port index", `{` + ok + `,"healthChecks":[{"portIndex":1}]}`, 422, "/healthChecks(0)", msgHCPortIndex},
		{"port index without ports", `{` + ok + `,"ports":[],"healthChecks":[{"protocol":"TCP"}]}`, 422, "/healthChecks(0)", msgHCPortIndex},
		{"port and index", `{` + ok + `,"healthChecks":[{"port":80,"portIndex":0}]}`, 422, "/healthChecks(0)", msgHCPortAndIdx},
		{"interval", `{` + ok + `,"healthChecks":[{"intervalSeconds":-1}]}`, 422, "/healthChecks(0)/intervalSeconds", "got -1, expected 0 or more"},
		{"single instance", `{` + ok + `,"instances":2,"labels":{"MARATHON_SINGLE_INSTANCE_APP":"true"},
			"upgradeStrategy":{"minimumHealthCapacity":0,"maximumOverCapacity":0}}`, 422, "/", msgSingleInst},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := appForCreate([]byte(tt.body), testLimits)
			wantDetail(t, err, tt.status, tt.path, tt.msg)
		})
	}
}

// All failures are reported at once, each under its own path.
func TestAppForCreateReportsEverything(t *testing.T) {
	_, err := appForCreate([]byte(`{"id":"/Bad","instances":-2,"constraints":[["a","B"]]}`), testLimits)
	var invalid *ValidationError
	if !errors.As(err, &invalid) {
		t.Fatalf("err = %v", err)
	}
	var paths []string
	for _, d := range invalid.Details {
		paths = append(paths, d.Path)
	}
	want := []string{"/id", "/", "/instances", "/constraints(0)"}
	if !slices.Equal(paths, want) {
		t.Fatalf("paths %v, want %v", paths, want)
	}
}

func TestNormalizeAppID(t *testing.T) {
	tests := []struct {
		in, want string
		bad      string
	}{
		{"web", "/web", ""},
		{"/web/", "/web", ""},
		{"//group//web", "/group/web", ""},
		{"/a.b/c-d/e1", "/a.b/c-d/e1", ""},
		{"/a/-b", "/a/-b", "must fully match"},
		{"/a/b-", "/a/b-", "must fully match"},
		{"/A", "/A", "must fully match"},
		{"/a b", "/a b", "must fully match"},
		{"/a_b", "/a_b", "must fully match"},
		{"", "/", msgEmptyPath},
		{"/./a", "/./a", msgDotSegment},
		{"/a/restart", "/a/restart", msgReservedID},
		{"/a/versions", "/a/versions", msgReservedID},
		{"/tasks/a", "/tasks/a", ""},
	}
	for _, tt := range tests {
		got, errs := normalizeAppID(tt.in)
		if got != tt.want {
			t.Errorf("normalizeAppID(%q) = %q, want %q", tt.in, got, tt.want)
		}
		joined := strings.Join(errs, "; ")
		if (tt.bad == "") != (len(errs) == 0) || !strings.Contains(joined, tt.bad) {
			t.Errorf("normalizeAppID(%q) errs %q, want %q", tt.in, joined, tt.bad)
		}
	}
}

func TestAppForUpdate(t *testing.T) {
	existing := eventstest.App("/web", 2)
	existing.Labels = map[string]string{"a": "1"}
	existing.HealthChecks = []events.HealthCheck{{Protocol: "TCP", PortIndex: intp(0)}}
	tests := []struct {
		name     string
		existing *events.App
		body     string
		partial  bool
		want     func(a *events.App)
	}{
		{"scale", &existing, `{"instances":5}`, true, func(a *events.App) { a.Instances = 5 }},
		{"same id in body", &existing, `{"id":"web","instances":5}`, true, func(a *events.App) { a.Instances = 5 }},
		{"labels replace", &existing, `{"labels":{"b":"2"}}`, true, func(a *events.App) { a.Labels = map[string]string{"b": "2"} }},
		{"args replace cmd", &existing, `{"args":["/bin/x"]}`, true, func(a *events.App) { a.Cmd, a.Args = "", []string{"/bin/x"} }},
		{"ports replace", &existing, `{"ports":[0,0]}`, true, func(a *events.App) {
			a.PortDefinitions = []events.PortDefinition{{Protocol: "tcp"}, {Protocol: "tcp"}}
		}},
		{"new app", nil, `{"cmd":"sleep 5"}`, true, func(a *events.App) { *a = defaultApp("/web"); a.Cmd = "sleep 5" }},
		{"full replace", &existing, `{"cmd":"sleep 5"}`, false, func(a *events.App) { *a = defaultApp("/web"); a.Cmd = "sleep 5" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := cloneApp(existing)
			got, err := appForUpdate("web/", tt.existing, []byte(tt.body), tt.partial, testLimits)
			if err != nil {
				t.Fatalf("appForUpdate: %v", err)
			}
			want := cloneApp(existing)
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
			if !reflect.DeepEqual(existing, before) {
				t.Fatalf("existing app changed: %+v", existing)
			}
		})
	}
}

// A partial update of instances alone must look like scaling to the core,
// which compares the definitions.
func TestAppForUpdateScalingOnly(t *testing.T) {
	existing := eventstest.App("/web", 2)
	existing.Labels = nil // stored apps need not be normalized
	got, err := appForUpdate("/web", &existing, []byte(`{"instances":3}`), true, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if !scalingOnly(existing, got) {
		t.Fatalf("scaling looks like a config change: %+v", got)
	}
	got, err = appForUpdate("/web", &existing, []byte(`{"instances":3,"cmd":"sleep 2"}`), true, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if scalingOnly(existing, got) {
		t.Fatal("a new cmd looks like scaling")
	}
}

func TestAppForUpdateErrors(t *testing.T) {
	existing := eventstest.App("/web", 2)
	tests := []struct {
		name, id, body string
		status         int
		path, msg      string
	}{
		{"other id in body", "/web", `{"id":"/other","instances":1}`, 422, "/id", msgIDMismatch},
		{"bad url id", "/We b", `{"cmd":"x y"}`, 422, "/id", "must fully match"},
		{"bad json", "/web", `{"instances":}`, 400, "/", "invalid character"},
		{"type", "/web", `{"instances":"2"}`, 400, "/instances", errExpNumber},
		{"invalid merge", "/web", `{"cmd":""}`, 422, "/", msgCmdOrArgs},
		{"both cmd and args", "/web", `{"cmd":"a b","args":["a"]}`, 422, "/", msgCmdOrArgs},
		{"bad constraint", "/web", `{"constraints":[["hostname","LIKE"]]}`, 422, "/constraints(0)", "regular expression"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := appForUpdate(tt.id, &existing, []byte(tt.body), true, testLimits)
			wantDetail(t, err, tt.status, tt.path, tt.msg)
		})
	}
}

func TestFormatNumbers(t *testing.T) {
	for in, want := range map[float64]string{1: "1.0", 0: "0.0", -0.5: "-0.5", 1.15: "1.15"} {
		if got := fmtDouble(in); got != want {
			t.Errorf("fmtDouble(%v) = %q, want %q", in, got, want)
		}
	}
	if got := fmtInt(-1); got != "-1" {
		t.Errorf("fmtInt(-1) = %q", got)
	}
}

// Every field of Marathon's app definition is honoured or refused, never
// dropped: a field this cluster cannot honour is a 422 naming it, unless
// its value asks for nothing; a field no app definition has is a 422;
// what Marathon itself writes into an app's JSON is ignored.
func TestAppFieldsHonouredOrRefused(t *testing.T) {
	const ok = `"id":"web","cmd":"sleep 1"`
	refused := []struct{ field, value string }{
		// container and networks: appdef_container_test.go
		{"ipAddress", `{"networkName":"dcos"}`},
		{"check", `{"http":{"portIndex":0,"path":"/"}}`},
		{"storeUrls", `["http://127.0.0.1/a"]`},
		{"acceptedResourceRoles", `["slave_public"]`},
		{"role", `"dev"`},
		{"residency", `{"taskLostBehavior":"WAIT_FOREVER"}`},
		{"secrets", `{"s":{"source":"db/pass"}}`},
		{"executor", `"/opt/my-executor"`},
		{"gpus", `1`},
		{"resourceLimits", `{"cpus":"unlimited"}`},
		{"tty", `true`},
	}
	for _, tc := range refused {
		t.Run("refused "+tc.field, func(t *testing.T) {
			_, err := appForCreate([]byte(`{`+ok+`,"`+tc.field+`":`+tc.value+`}`), testLimits)
			wantDetail(t, err, 422, "/"+tc.field, msgUnsupportedField)
		})
	}
	t.Run("killSelection", func(t *testing.T) {
		a, err := appForCreate([]byte(`{`+ok+`,"killSelection":"OLDEST_FIRST"}`), testLimits)
		if err != nil || a.KillSelection != events.KillOldestFirst {
			t.Fatalf("OLDEST_FIRST: %v %q", err, a.KillSelection)
		}
		_, err = appForCreate([]byte(`{`+ok+`,"killSelection":"RANDOM"}`), testLimits)
		wantDetail(t, err, 422, "/killSelection", "expected one of: [YOUNGEST_FIRST, OLDEST_FIRST]")
	})
	t.Run("fetch", func(t *testing.T) {
		a, err := appForCreate([]byte(`{`+ok+`,"fetch":[{"uri":"https://example.test/a.tgz"},{"uri":"http://example.test/run.sh","extract":false,"executable":true,"destPath":"bin/run"}]}`), testLimits)
		want := []events.FetchURI{{URI: "https://example.test/a.tgz", Extract: true}, {URI: "http://example.test/run.sh", Executable: true, DestPath: "bin/run"}}
		if err != nil || !reflect.DeepEqual(a.Fetch, want) {
			t.Fatalf("fetch: %v %+v", err, a.Fetch)
		}
		// uris become fetch, archives extracted, as Marathon's FetchUri.
		a, err = appForCreate([]byte(`{`+ok+`,"uris":["http://example.test/a.tar.gz","http://example.test/b.txt"]}`), testLimits)
		want = []events.FetchURI{{URI: "http://example.test/a.tar.gz", Extract: true}, {URI: "http://example.test/b.txt"}}
		if err != nil || !reflect.DeepEqual(a.Fetch, want) {
			t.Fatalf("uris: %v %+v", err, a.Fetch)
		}
		for _, tc := range []struct{ body, path, msg string }{
			{`"fetch":[{"uri":"file:///etc/shadow"}]`, "/fetch(0)/uri", msgFetchScheme},
			{`"fetch":[{"uri":"not a uri"}]`, "/fetch(0)/uri", msgURISyntax},
			{`"fetch":[{"uri":"http://example.test/a","destPath":"../../etc/cron.d/x"}]`, "/fetch(0)/destPath", msgDestPath},
			{`"fetch":[{"uri":"http://example.test/a","destPath":"/etc/x"}]`, "/fetch(0)/destPath", msgDestPath},
			{`"fetch":[{"uri":"http://example.test/a"}],"uris":["http://example.test/b"]`, "/uris", msgFetchWithURIs},
		} {
			_, err := appForCreate([]byte(`{`+ok+`,`+tc.body+`}`), testLimits)
			wantDetail(t, err, 422, tc.path, tc.msg)
		}
		_, err = appForCreate([]byte(`{`+ok+`,"fetch":[{"extract":true}]}`), testLimits)
		wantDetail(t, err, 400, "/fetch(0)/uri", errPathMissing)
	})
	t.Run("readinessChecks", func(t *testing.T) {
		const ports = `"portDefinitions":[{"port":0,"name":"http"}]`
		a, err := appForCreate([]byte(`{`+ok+`,`+ports+`,"readinessChecks":[{"path":"/ready","portName":"http"}]}`), testLimits)
		want := []events.ReadinessCheck{{Name: "readinessCheck", Protocol: "HTTP", Path: "/ready", PortName: "http",
			IntervalSeconds: 30, TimeoutSeconds: 10, HTTPStatusCodesForReady: []int{200}}}
		if err != nil || !reflect.DeepEqual(a.ReadinessChecks, want) {
			t.Fatalf("readinessChecks with Marathon's defaults: %v %+v", err, a.ReadinessChecks)
		}
		for _, tc := range []struct{ body, path, msg string }{
			{`"readinessChecks":[{"portName":"nope"}]`, "/readinessChecks(0)/portName", msgReadinessPort},
			{`"readinessChecks":[{"portName":"http","protocol":"TCP"}]`, "/readinessChecks(0)/protocol", msgReadinessProtocol},
			{`"readinessChecks":[{"portName":"http","intervalSeconds":5,"timeoutSeconds":5}]`, "/readinessChecks(0)/timeoutSeconds", msgReadinessTimeout},
			{`"readinessChecks":[{"portName":"http"},{"portName":"http"}]`, "/readinessChecks", msgOneReadinessCheck},
			{`"readinessChecks":[{"portName":"http","httpStatusCodesForReady":[99]}]`, "/readinessChecks(0)/httpStatusCodesForReady", "from 100 to 999"},
			{`"readinessChecks":[{"portName":"http","preserveLastResponse":true}]`, "/readinessChecks(0)/preserveLastResponse", msgReadinessKeep},
		} {
			_, err := appForCreate([]byte(`{`+ok+`,`+ports+`,`+tc.body+`}`), testLimits)
			wantDetail(t, err, 422, tc.path, tc.msg)
		}
	})
	t.Run("unreachableStrategy", func(t *testing.T) {
		a, err := appForCreate([]byte(`{`+ok+`,"unreachableStrategy":{"inactiveAfterSeconds":60,"expungeAfterSeconds":120}}`), testLimits)
		if err != nil || a.UnreachableStrategy == nil || *a.UnreachableStrategy != (events.UnreachableStrategy{InactiveAfterSeconds: 60, ExpungeAfterSeconds: 120}) {
			t.Fatalf("object: %v %+v", err, a.UnreachableStrategy)
		}
		a, err = appForCreate([]byte(`{`+ok+`,"unreachableStrategy":"disabled"}`), testLimits)
		if err != nil || a.UnreachableStrategy == nil || !a.UnreachableStrategy.Disabled {
			t.Fatalf("disabled: %v %+v", err, a.UnreachableStrategy)
		}
		_, err = appForCreate([]byte(`{`+ok+`,"unreachableStrategy":{"inactiveAfterSeconds":60}}`), testLimits)
		wantDetail(t, err, 422, "/unreachableStrategy/inactiveAfterSeconds", "must be less or equal to expungeAfterSeconds, which is 0")
		_, err = appForCreate([]byte(`{`+ok+`,"unreachableStrategy":"sometimes"}`), testLimits)
		wantDetail(t, err, 422, "/unreachableStrategy", `must be "disabled"`)
	})
	t.Run("unknown field", func(t *testing.T) {
		_, err := appForCreate([]byte(`{`+ok+`,"bogusField":1}`), testLimits)
		wantDetail(t, err, 422, "/bogusField", msgUnknownField)
	})
	t.Run("unknown field on update", func(t *testing.T) {
		existing := defaultApp("/web")
		existing.Cmd = "sleep 1"
		_, err := appForUpdate("/web", &existing, []byte(`{"instnaces":3}`), true, testLimits)
		wantDetail(t, err, 422, "/instnaces", msgUnknownField)
	})
	// Values that ask for nothing, and what Marathon writes into an
	// app's JSON, are taken.
	for _, extra := range []string{
		`"container":null`, `"dependencies":[]`, `"fetch":[]`, `"uris":null`, `"networks":[{"mode":"host"}]`,
		`"acceptedResourceRoles":["*"]`, `"role":"*"`, `"executor":""`, `"executor":"//cmd"`, `"gpus":0`,
		`"killSelection":"YOUNGEST_FIRST"`, `"tty":false`, `"secrets":{}`, `"readinessChecks":[]`,
		`"tasksRunning":3`, `"deployments":[{"id":"x"}]`, `"versionInfo":{"lastScalingAt":"2026-01-01T00:00:00.000Z"}`,
		`"lastTaskFailure":{"message":"x"}`, `"waiting":[]`,
	} {
		if _, err := appForCreate([]byte(`{`+ok+`,`+extra+`}`), testLimits); err != nil {
			t.Errorf("%s: %v", extra, err)
		}
	}
}

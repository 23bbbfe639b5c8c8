package master

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// secretApp has a secret in its env, which reads of the apps show.
const secretApp = `{"id":"/db","cmd":"sleep 1000","instances":0,"cpus":0.1,"mem":32,"env":{"DB_PASSWORD":"hunter2"}}`

// head sends a request and reads only the status and headers, so that it
// also works on /v2/events, whose body never ends.
func head(t *testing.T, method, url string, header ...string) (int, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// Every path needs the credentials when they are configured, reads and
// the event stream included; /ping and /master/health answer anyone. The
// old API let GET through, env values and all.
func TestCredentialsGuardEveryPathButLiveness(t *testing.T) {
	ns := eventstest.StartNATS(t)
	leader := serveMaster(t, ns, "leader", "admin:s3cret", true)
	auth := basicAuth("admin", "s3cret")
	if res := do(t, "POST", leader.url+"/v2/apps", secretApp, "Authorization", auth); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}

	paths := []string{
		"/v2/apps", "/v2/apps?embed=apps.tasks", "/v2/apps/db", "/v2/apps/db/tasks", "/v2/tasks",
		"/v2/deployments", "/v2/queue", "/v2/info", "/v2/leader", "/v2/events",
		"/master/state", "/master/state.json", "/state.json", "/metrics",
		"/ui", "/ui/", "/ui/app.js", "/v2/nothing", "/",
	}
	for _, p := range paths {
		for _, creds := range [][]string{nil, {"Authorization", basicAuth("admin", "wrong")}, {"Authorization", basicAuth("root", "s3cret")}} {
			status, h := head(t, "GET", leader.url+p, creds...)
			if status != http.StatusUnauthorized || h.Get("WWW-Authenticate") != `Basic realm="Mesosphere"` {
				t.Errorf("GET %s with %v: %d %v, want 401 with a challenge", p, creds, status, h)
			}
		}
		if status, _ := head(t, "GET", leader.url+p, "Authorization", auth); status == http.StatusUnauthorized || status >= 500 {
			t.Errorf("GET %s with the credentials: %d", p, status)
		}
	}
	// A refusal shows nothing of the apps.
	if res := do(t, "GET", leader.url+"/v2/apps?embed=apps.tasks", ""); strings.Contains(string(res.body), "hunter2") {
		t.Errorf("401 body shows the env: %s", res.body)
	}
	if res := do(t, "GET", leader.url+"/v2/apps", "", "Authorization", auth); !strings.Contains(string(res.body), "hunter2") {
		t.Errorf("with the credentials the app's env is missing: %d %s", res.status, res.body)
	}
	// Mesos's operator API, a change.
	if res := do(t, "POST", leader.url+"/api/v1", `{"type":"MARK_AGENT_GONE"}`); res.status != http.StatusUnauthorized {
		t.Errorf("POST /api/v1 without credentials: %d %s", res.status, res.body)
	}
	for _, p := range []string{"/ping", "/master/health"} {
		if status, _ := head(t, "GET", leader.url+p); status != http.StatusOK {
			t.Errorf("GET %s without credentials: %d, want 200", p, status)
		}
	}
	if n := testutil.ToFloat64(leader.m.metrics.httpRefused.WithLabelValues(refuseUnauthorized)); n < float64(3*len(paths)) {
		t.Errorf("atoll_master_http_refused_total{reason=unauthorized} = %v, want >= %d", n, 3*len(paths))
	}
}

// A standby answers /v2/leader, /v2/info and /metrics itself: it checks
// the credentials on them, and on what it would redirect or forward.
func TestStandbyChecksCredentials(t *testing.T) {
	ns := eventstest.StartNATS(t)
	leader := serveMaster(t, ns, "leader", "admin:s3cret", true)
	standby := serveMaster(t, ns, "standby", "admin:s3cret", false)
	follow(standby.m, leader.m.selfInfo())
	auth := basicAuth("admin", "s3cret")

	for _, c := range []struct {
		path string
		want int // with the credentials
	}{
		{"/v2/leader", 200}, {"/v2/info", 200}, {"/metrics", 200},
		{"/v2/events", http.StatusFound}, {"/master/state", http.StatusTemporaryRedirect}, {"/v2/apps", 200},
	} {
		before := leader.calls.n()
		if status, _ := head(t, "GET", standby.url+c.path); status != http.StatusUnauthorized {
			t.Errorf("GET %s on the standby without credentials: %d, want 401", c.path, status)
		}
		if leader.calls.n() != before {
			t.Errorf("GET %s without credentials reached the leader", c.path)
		}
		if status, _ := head(t, "GET", standby.url+c.path, "Authorization", auth); status != c.want {
			t.Errorf("GET %s on the standby with credentials: %d, want %d", c.path, status, c.want)
		}
	}
	if status, _ := head(t, "GET", standby.url+"/ping"); status != http.StatusOK {
		t.Errorf("/ping on the standby: %d", status)
	}
}

// Changes come as JSON from the API's own origin, with or without
// credentials: a page elsewhere in the operator's browser can send a
// text/plain POST without a CORS preflight, and the browser adds the
// cached credentials. The old API created the app.
func TestChangesMustBeSameOriginJSON(t *testing.T) {
	ns := eventstest.StartNATS(t)
	for _, creds := range []string{"", "admin:s3cret"} {
		t.Run("credentials="+creds, func(t *testing.T) {
			leader := serveMaster(t, ns, "leader", creds, true)
			var auth []string
			if creds != "" {
				auth = []string{"Authorization", basicAuth("admin", "s3cret")}
			}
			self := leader.url // http://127.0.0.1:port, the Origin of a page it serves
			with := func(h ...string) []string { return append(append([]string(nil), auth...), h...) }

			refused := []struct {
				name, method, path, body string
				header                   []string
				status                   int
			}{
				{"text/plain from a foreign page", "POST", "/v2/apps", secretApp,
					[]string{"Origin", "http://evil.example", "Content-Type", "text/plain", "Sec-Fetch-Site", "cross-site"}, 403},
				{"JSON from a foreign page", "POST", "/v2/apps", secretApp, []string{"Origin", "http://evil.example"}, 403},
				{"another port of this host", "POST", "/v2/apps", secretApp, []string{"Origin", "http://127.0.0.1:1"}, 403},
				{"an opaque origin", "POST", "/v2/apps", secretApp, []string{"Origin", "null"}, 403},
				{"Sec-Fetch-Site cross-site without Origin", "POST", "/v2/apps", secretApp, []string{"Sec-Fetch-Site", "cross-site"}, 403},
				{"Sec-Fetch-Site same-site without Origin", "POST", "/v2/apps", secretApp, []string{"Sec-Fetch-Site", "same-site"}, 403},
				{"form from a foreign page", "POST", "/v2/apps", secretApp,
					[]string{"Origin", "http://evil.example", "Content-Type", "application/x-www-form-urlencoded"}, 403},
				{"text/plain without Origin", "POST", "/v2/apps", secretApp, []string{"Content-Type", "text/plain"}, 415},
				{"text/plain from this origin", "POST", "/v2/apps", secretApp, []string{"Origin", self, "Content-Type", "text/plain"}, 415},
				{"form without Origin", "POST", "/v2/apps", secretApp, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
				{"no Content-Type", "POST", "/v2/apps", secretApp, []string{"Content-Type", ""}, 415},
				{"operator call as text", "POST", "/api/v1", `{"type":"MARK_AGENT_GONE","mark_agent_gone":{"agent_id":{"value":"a1"}}}`,
					[]string{"Content-Type", "text/plain"}, 415},
			}
			for _, c := range refused {
				s0 := seq(leader.m)
				res := do(t, c.method, self+c.path, c.body, with(c.header...)...)
				if res.status != c.status || seq(leader.m) != s0 {
					t.Errorf("%s: %d %s (seq %d -> %d), want %d and no change", c.name, res.status, res.body, s0, seq(leader.m), c.status)
					continue
				}
				want := "Unsupported Media Type" // Marathon's, word for word
				if c.status == 403 {
					want = "Cross-origin request refused"
				}
				if msg, _ := res.json(t)["message"].(string); !strings.HasPrefix(msg, want) {
					t.Errorf("%s: message %q, want %q...", c.name, msg, want)
				}
				for k := range res.header {
					if strings.HasPrefix(k, "Access-Control-") {
						t.Errorf("%s: CORS header %s without --http-cors-origin", c.name, k)
					}
				}
			}
			leader.m.View(func(s *events.State) {
				if len(s.Apps) != 0 {
					t.Errorf("apps created by refused calls: %v", s.Apps)
				}
			})
			if n := testutil.ToFloat64(leader.m.metrics.httpRefused.WithLabelValues(refuseCrossOrigin)); n != 7 {
				t.Errorf("refused cross_origin = %v, want 7", n)
			}
			if n := testutil.ToFloat64(leader.m.metrics.httpRefused.WithLabelValues(refuseMediaType)); n != 5 {
				t.Errorf("refused media_type = %v, want 5", n)
			}

			// What the UI (a page of this origin) and curl send.
			accepted := []struct {
				name, method, path, body string
				header                   []string
				status                   int
			}{
				{"the UI's POST", "POST", "/v2/apps", secretApp,
					[]string{"Origin", self, "Sec-Fetch-Site", "same-origin"}, 201},
				{"the UI's PUT", "PUT", "/v2/apps/db?force=true", `{"instances":0,"cmd":"sleep 2000"}`,
					[]string{"Origin", self, "Content-Type", "application/json; charset=utf-8"}, 200},
				{"curl's restart, no body", "POST", "/v2/apps/db/restart?force=true", "", []string{"Content-Type", "application/x-www-form-urlencoded"}, 200},
				{"the UI's DELETE, no body", "DELETE", "/v2/apps/db?force=true", "", []string{"Origin", self}, 200},
			}
			for _, c := range accepted {
				if res := do(t, c.method, self+c.path, c.body, with(c.header...)...); res.status != c.status {
					t.Errorf("%s: %d %s, want %d", c.name, res.status, res.body, c.status)
				}
			}
		})
	}
}

// A page of a listed origin may call the API: it gets CORS headers, its
// preflight an answer without credentials (browsers send none with it),
// and its changes pass. Others get no CORS headers at all.
func TestCORSOnlyForListedOrigins(t *testing.T) {
	ns := eventstest.StartNATS(t)
	const dash = "https://dash.example:8443"
	leader := serveMasterWith(t, ns, Config{ID: "leader", HTTPCredentials: "admin:s3cret", HTTPCORSOrigins: []string{dash + "/"}}, true)
	auth := basicAuth("admin", "s3cret")

	res := do(t, "OPTIONS", leader.url+"/v2/apps", "", "Origin", dash,
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,authorization")
	h := res.header
	if res.status != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != dash ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		h.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type" || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight from %s: %d %v", dash, res.status, h)
	}
	res = do(t, "POST", leader.url+"/v2/apps", secretApp, "Origin", dash, "Sec-Fetch-Site", "cross-site", "Authorization", auth)
	if res.status != http.StatusCreated || res.header.Get("Access-Control-Allow-Origin") != dash || !strings.Contains(res.header.Get("Vary"), "Origin") {
		t.Errorf("POST from %s: %d %v %s", dash, res.status, res.header, res.body)
	}
	// Its reads without credentials are refused, with the CORS header so
	// that its page can see the 401.
	res = do(t, "GET", leader.url+"/v2/apps", "", "Origin", dash)
	if res.status != http.StatusUnauthorized || res.header.Get("Access-Control-Allow-Origin") != dash {
		t.Errorf("GET from %s without credentials: %d %v", dash, res.status, res.header)
	}

	for _, origin := range []string{"https://dash.example", "http://dash.example:8443", "https://evil.example"} {
		res := do(t, "OPTIONS", leader.url+"/v2/apps", "", "Origin", origin, "Access-Control-Request-Method", "POST")
		res2 := do(t, "GET", leader.url+"/v2/apps", "", "Origin", origin, "Authorization", auth)
		for _, r := range []response{res, res2} {
			for k := range r.header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("%s: CORS header %s: %v", origin, k, r.header)
				}
			}
		}
		if res2.status != 200 {
			t.Errorf("GET from %s with credentials: %d", origin, res2.status) // the browser keeps the answer from the page
		}
		if res := do(t, "POST", leader.url+"/v2/apps", secretApp, "Origin", origin, "Authorization", auth); res.status != http.StatusForbidden {
			t.Errorf("POST from %s: %d %s", origin, res.status, res.body)
		}
	}
}

// Bad credentials or origins in the config are refused at start, with
// the reason.
func TestGuardConfigErrors(t *testing.T) {
	ns := eventstest.StartNATS(t)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{HTTPCredentials: "admin"}, "user:password"},
		{Config{HTTPCredentials: ":pw"}, "user:password"},
		{Config{HTTPCredentials: "admin:"}, "user:password"},
		{Config{HTTPCORSOrigins: []string{"*"}}, `"*"`},
		{Config{HTTPCORSOrigins: []string{"dash.example"}}, "scheme://host"},
		{Config{HTTPCORSOrigins: []string{"https://dash.example/ui"}}, "scheme://host"},
	} {
		c.cfg.NC, c.cfg.Store = eventstest.Connect(t, ns), &MemStore{}
		_, err := New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error about %s", c.cfg.HTTPCORSOrigins, err, c.want)
		}
	}
	user, pass, err := ParseHTTPCredentials("admin:pa:ss")
	if err != nil || user != "admin" || pass != "pa:ss" {
		t.Errorf("a password with a colon: %q %q %v", user, pass, err)
	}
}

// A page served by a standby posts to the standby: the leader sees the
// Host the page used and accepts it; a foreign page is refused by the
// standby already.
func TestStandbyForwardsSameOriginChanges(t *testing.T) {
	ns := eventstest.StartNATS(t)
	leader := serveMaster(t, ns, "leader", "", true)
	standby := serveMaster(t, ns, "standby", "", false)
	follow(standby.m, leader.m.selfInfo())

	res := do(t, "POST", standby.url+"/v2/apps", secretApp, "Origin", standby.url, "Sec-Fetch-Site", "same-origin")
	if res.status != http.StatusCreated {
		t.Fatalf("the standby's own page: %d %s", res.status, res.body)
	}
	before := leader.calls.n()
	res = do(t, "PUT", standby.url+"/v2/apps/db", `{"instances":0}`, "Origin", leader.url)
	if res.status != http.StatusForbidden || leader.calls.n() != before {
		t.Errorf("another origin through the standby: %d %s, leader calls %d -> %d", res.status, res.body, before, leader.calls.n())
	}
}

func TestSameHost(t *testing.T) {
	for _, c := range []struct {
		origin, host string
		want         bool
	}{
		{"http://127.0.0.1:8080", "127.0.0.1:8080", true},
		{"HTTP://Master.Example:8080", "master.example:8080", true},
		{"http://master.example", "master.example", true},
		{"http://master.example", "master.example:80", true},
		{"https://master.example", "master.example:443", true},
		{"https://master.example:443", "master.example", true},
		{"http://[::1]:8080", "[::1]:8080", true},
		{"http://127.0.0.1:8080", "127.0.0.1:8081", false},
		{"http://127.0.0.1", "127.0.0.1:8080", false},
		{"http://master.example", "master.example:443", false},
		{"http://evil.example", "master.example", false},
		{"http://master.example.evil.example", "master.example", false},
		{"null", "master.example", false},
		{"", "master.example", false},
	} {
		if got := sameHost(c.origin, c.host); got != c.want {
			t.Errorf("sameHost(%q, %q) = %v, want %v", c.origin, c.host, got, c.want)
		}
	}
}

// Profiles are served only when asked for, and then only with the API's
// credentials: they show the cluster's apps and cost CPU.
func TestProfilesOnlyWhenAskedAndGuarded(t *testing.T) {
	m, h := newAPI(t, "admin:s3cret")
	if res := call(t, h, "GET", "/debug/pprof/heap", "", "admin", "s3cret"); res.status != http.StatusNotFound {
		t.Errorf("profiles without --pprof: %d", res.status)
	}
	m.cfg.Profiling = true
	h = m.Handler()
	if res := call(t, h, "GET", "/debug/pprof/heap", ""); res.status != http.StatusUnauthorized {
		t.Errorf("profiles without credentials: %d", res.status)
	}
	req := httptest.NewRequest("GET", "/debug/pprof/heap", nil)
	req.SetBasicAuth("admin", "s3cret")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
		t.Errorf("profiles with credentials: %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

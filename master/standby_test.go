package master

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

func TestStandbyRoute(t *testing.T) {
	tests := []struct {
		method, path string
		want         route
	}{
		{"GET", "/v2/apps", routeForward},
		{"POST", "/v2/apps", routeForward},
		{"PUT", "/v2/apps/group/web", routeForward},
		{"DELETE", "/v2/apps/web/tasks/web.1", routeForward},
		{"GET", "/v2/tasks", routeForward},
		{"GET", "/v2/deployments", routeForward},
		{"DELETE", "/v2/deployments/d1", routeForward},
		{"GET", "/v2/queue", routeForward},
		{"GET", "/v2", routeForward},
		{"GET", "/v2/nothing", routeForward},
		{"GET", "/v2/events", routeFound},
		{"HEAD", "/v2/events", routeFound},
		{"POST", "/v2/events", routeForward},
		{"GET", "/v2/leader", routeLocal},
		{"HEAD", "/v2/leader", routeLocal},
		{"DELETE", "/v2/leader", routeForward},
		{"GET", "/v2/info", routeLocal},
		{"POST", "/v2/info", routeForward},
		{"GET", "/ping", routeLocal},
		{"HEAD", "/ping", routeLocal},
		{"GET", "/metrics", routeLocal},
		{"GET", "/master/health", routeLocal},
		{"GET", "/master/state", routeTemporary},
		{"GET", "/master/state.json", routeTemporary},
		{"GET", "/master/redirect", routeTemporary},
		{"POST", "/master/teardown", routeTemporary},
		{"GET", "/master", routeTemporary},
		{"GET", "/state.json", routeTemporary},
		{"POST", "/api/v1", routeTemporary},
		{"GET", "/", routeLocal},
		{"GET", "/ui/", routeLocal},
		{"GET", "/v2apps", routeLocal},
		{"GET", "/masterful", routeLocal},
	}
	for _, tt := range tests {
		if got := standbyRoute(tt.method, tt.path); got != tt.want {
			t.Errorf("%s %s: %v, want %v", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestViaNames(t *testing.T) {
	const self = "10.0.0.1:8080"
	tests := []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"1.1 10.0.0.1:8080"}, true},
		{[]string{"1.1 10.0.0.2:8080, 1.1 10.0.0.1:8080"}, true},
		{[]string{"1.1 10.0.0.2:8080", "1.1 10.0.0.1:8080"}, true},
		{[]string{"1.1   10.0.0.1:8080 (atoll)"}, true},
		{[]string{"1.1 10.0.0.1:80800"}, false},
		{[]string{"1.1 10.0.0.1"}, false},
		{[]string{"10.0.0.1:8080"}, false}, // no protocol: not a hop
	}
	for _, tt := range tests {
		if got := viaNames(tt.values, self); got != tt.want {
			t.Errorf("viaNames(%q): %v, want %v", tt.values, got, tt.want)
		}
	}
}

// servedMaster is a master whose API listens on 127.0.0.1, on the port it
// advertises, and the calls that reached it.
type servedMaster struct {
	m     *Master
	url   string // http://ip:port
	calls *callLog
}

// hostPort is what the master advertises and loop detection compares.
func (s servedMaster) hostPort() string { return s.m.selfInfo().HostPort() }

// serveMaster starts a master's API. It leads (its state established, no
// loops running) if lead is set; otherwise it is a standby that knows no
// leader until follow tells it one.
func serveMaster(t *testing.T, ns *eventstest.NATS, id, creds string, lead bool) servedMaster {
	t.Helper()
	return serveMasterWith(t, ns, Config{ID: id, HTTPCredentials: creds}, lead)
}

// serveMasterWith is serveMaster with more of the config: NC, Store,
// Listener, Hostname and Log are filled in; it listens on cfg.HTTPAddr
// (default 127.0.0.1:0). With cfg.TLS it serves HTTPS.
func serveMasterWith(t *testing.T, ns *eventstest.NATS, cfg Config, lead bool) servedMaster {
	t.Helper()
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NC, cfg.Store, cfg.Listener = eventstest.Connect(t, ns), &MemStore{}, ln
	cfg.Hostname = cfg.ID + ".test"
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if lead {
		establishForTest(t, m)
	}
	calls := &callLog{}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: calls.wrap(m.Handler())}}
	if cfg.TLS != nil {
		srv.TLS = cfg.TLS
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return servedMaster{m: m, url: srv.URL, calls: calls}
}

// follow is the test's stand-in for the election: standby learns that
// leader leads.
func follow(standby *Master, leader MasterInfo) { standby.leaderInfo.Store(&leader) }

// infoAt is a MasterInfo for a master at addr ("ip:port").
func infoAt(t *testing.T, addr string) MasterInfo {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return MasterInfo{ID: "m-" + addr, Hostname: host, Port: port,
		Address: MasterAddress{Hostname: host, IP: host, Port: port}}
}

// deadAddr is a 127.0.0.1 address that refuses connections.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// callLog records the calls a server received. hold, if set, is called
// before a call is served.
type callLog struct {
	mu    sync.Mutex
	calls []loggedCall
	hold  func(r *http.Request)
}

type loggedCall struct {
	method, uri string
	header      http.Header
}

func (l *callLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.calls = append(l.calls, loggedCall{r.Method, r.RequestURI, r.Header.Clone()})
		hold := l.hold
		l.mu.Unlock()
		if hold != nil {
			hold(r)
		}
		next.ServeHTTP(w, r)
	})
}

func (l *callLog) n() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

func (l *callLog) last(t *testing.T) loggedCall {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.calls) == 0 {
		t.Fatal("no calls")
	}
	return l.calls[len(l.calls)-1]
}

// do sends a real HTTP request; header is name, value pairs.
func do(t *testing.T, method, url, body string, header ...string) response {
	t.Helper()
	res, err := send(method, url, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func send(method, url, body string, header ...string) (response, error) {
	// Redirects are shown, not followed: they are part of what is tested.
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return sendVia(client, method, url, body, header...)
}

// sendVia is send with a client of the caller's (for HTTPS).
func sendVia(client *http.Client, method, url, body string, header ...string) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json") // as every client sends
	}
	for i := 0; i+1 < len(header); i += 2 {
		if http.CanonicalHeaderKey(header[i]) == "Content-Type" {
			req.Header.Del("Content-Type")
		}
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %w", method, url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

func basicAuth(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

func TestStandbyForwardsToLeader(t *testing.T) {
	ns := eventstest.StartNATS(t)
	leader := serveMaster(t, ns, "leader", "admin:s3cret", true)
	standby := serveMaster(t, ns, "standby", "", false)
	follow(standby.m, leader.m.selfInfo())
	leaderURL := "http://" + leader.hostPort()
	auth := basicAuth("admin", "s3cret")

	// The leader checks credentials: a standby has none configured and
	// passes the leader's 401 back.
	res := do(t, "POST", standby.url+"/v2/apps", webApp)
	if res.status != http.StatusUnauthorized || res.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("without credentials: %d %v %s", res.status, res.header, res.body)
	}

	res = do(t, "POST", standby.url+"/v2/apps", webApp, "Authorization", auth, "X-Forwarded-For", "10.9.9.9")
	if res.status != http.StatusCreated || res.header.Get("Location") != "/v2/apps/web" ||
		at(t, res.json(t), "id") != "/web" {
		t.Fatalf("create through the standby: %d %v %s", res.status, res.header, res.body)
	}
	if got := res.header.Get(headerLeader); got != leaderURL {
		t.Errorf("%s %q, want %q", headerLeader, got, leaderURL)
	}
	if got := res.header.Values(headerLeader); len(got) != 1 {
		t.Errorf("%s sent %d times: %q", headerLeader, len(got), got)
	}
	leader.m.View(func(s *events.State) {
		if _, ok := s.Apps["/web"]; !ok {
			t.Errorf("leader has no /web: %v", s.Apps)
		}
	})
	got := leader.calls.last(t)
	if got.method != "POST" || got.uri != "/v2/apps" ||
		got.header.Get(headerVia) != "1.1 "+standby.hostPort() ||
		got.header.Get("X-Forwarded-For") != "10.9.9.9, 127.0.0.1" {
		t.Errorf("the leader received %s %s with %v", got.method, got.uri, got.header)
	}
	standby.m.View(func(s *events.State) {
		if len(s.Apps) != 0 {
			t.Errorf("the standby changed its own state: %v", s.Apps)
		}
	})

	// A read, its query included: the leader wants credentials for it too.
	if res := do(t, "GET", standby.url+"/v2/apps", ""); res.status != http.StatusUnauthorized {
		t.Fatalf("read without credentials through the standby: %d %s", res.status, res.body)
	}
	res = do(t, "GET", standby.url+"/v2/apps?embed=apps.tasks&id=web", "", "Authorization", auth)
	if res.status != http.StatusOK || res.header.Get(headerLeader) != leaderURL {
		t.Fatalf("list through the standby: %d %v %s", res.status, res.header, res.body)
	}
	if _, ok := at(t, res.json(t), "apps", 0).(map[string]any)["tasks"]; !ok {
		t.Errorf("embed=apps.tasks was lost: %s", res.body)
	}
	if got := leader.calls.last(t).uri; got != "/v2/apps?embed=apps.tasks&id=web" {
		t.Errorf("the leader received %q", got)
	}

	// The leader's errors come back as they are.
	const bad = `{"id":"/Web_1","cmd":"a b"}`
	direct := do(t, "POST", leader.url+"/v2/apps", bad, "Authorization", auth)
	res = do(t, "POST", standby.url+"/v2/apps", bad, "Authorization", auth)
	if direct.status != http.StatusUnprocessableEntity || res.status != direct.status ||
		string(res.body) != string(direct.body) ||
		res.header.Get("Content-Type") != direct.header.Get("Content-Type") ||
		res.header.Get(headerLeader) != leaderURL {
		t.Errorf("422 through the standby: %d %v %s\ndirect: %d %v %s",
			res.status, res.header, res.body, direct.status, direct.header, direct.body)
	}

	// No cap on the standby: the leader's own limit answers.
	big := `{"id":"big","cmd":"` + strings.Repeat("x", 2<<20) + `"}`
	res = do(t, "POST", standby.url+"/v2/apps", big, "Authorization", auth)
	if res.status != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body: %d %s", res.status, res.body)
	}
}

func TestLeaderNamesItself(t *testing.T) {
	ns := eventstest.StartNATS(t)
	leader := serveMaster(t, ns, "leader", "", true)
	want := "http://" + leader.hostPort()
	for _, path := range []string{"/v2/apps", "/v2/info", "/v2/leader", "/ping", "/master/health", "/master/state", "/v2/nothing"} {
		res := do(t, "GET", leader.url+path, "")
		if res.header.Get(headerLeader) != want {
			t.Errorf("GET %s on the leader: %d, %s %q, want %q", path, res.status, headerLeader, res.header.Get(headerLeader), want)
		}
	}
	if info := do(t, "GET", leader.url+"/v2/info", "").json(t); info["elected"] != true || info["leader"] != leader.hostPort() {
		t.Errorf("info on the leader: elected %v, leader %v", info["elected"], info["leader"])
	}
	// /v2/events is served, not redirected, by the leader.
	res := do(t, "HEAD", leader.url+"/v2/events", "")
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("events on the leader: %d %v", res.status, res.header)
	}
}

func TestStandbyAnswersLocally(t *testing.T) {
	ns := eventstest.StartNATS(t)
	leader := serveMaster(t, ns, "leader", "", true)
	standby := serveMaster(t, ns, "standby", "", false)
	follow(standby.m, leader.m.selfInfo())
	leaderURL := "http://" + leader.hostPort()
	before := leader.calls.n()

	res := do(t, "GET", standby.url+"/v2/leader", "")
	if res.status != http.StatusOK || res.json(t)["leader"] != leader.hostPort() {
		t.Errorf("leader: %d %s", res.status, res.body)
	}
	res = do(t, "GET", standby.url+"/v2/info", "")
	if info := res.json(t); res.status != http.StatusOK || info["elected"] != false ||
		info["leader"] != leader.hostPort() ||
		at(t, info, "http_config", "http_port") != float64(standby.m.selfInfo().Port) {
		t.Errorf("info: %d %s", res.status, res.body)
	}
	res = do(t, "GET", standby.url+"/ping", "")
	if res.status != http.StatusOK || string(res.body) != "pong\n" {
		t.Errorf("ping: %d %q", res.status, res.body)
	}
	res = do(t, "GET", standby.url+"/master/health", "")
	if res.status != http.StatusOK || len(res.body) != 0 {
		t.Errorf("health: %d %q", res.status, res.body)
	}
	res = do(t, "GET", standby.url+"/metrics", "")
	if res.status != http.StatusOK || !strings.Contains(string(res.body), "\natoll_master_leader 0\n") {
		t.Errorf("metrics: %d, atoll_master_leader 0 not in\n%s", res.status, res.body)
	}
	// Standbys name the leader on what they answer themselves too.
	if got := res.header.Get(headerLeader); got != leaderURL {
		t.Errorf("%s on a local answer: %q, want %q", headerLeader, got, leaderURL)
	}
	if n := leader.calls.n(); n != before {
		t.Errorf("the leader got %d calls meant for the standby", n-before)
	}
}

func TestStandbyRedirects(t *testing.T) {
	ns := eventstest.StartNATS(t)
	leader := serveMaster(t, ns, "leader", "", true)
	standby := serveMaster(t, ns, "standby", "", false)
	follow(standby.m, leader.m.selfInfo())
	leaderURL := "http://" + leader.hostPort()
	before := leader.calls.n()

	tests := []struct {
		method, uri string
		status      int
	}{
		{"GET", "/v2/events?event_type=status_update_event&event_type=deployment_info", http.StatusFound},
		{"GET", "/master/state", http.StatusTemporaryRedirect},
		{"GET", "/master/state.json?jsonp=x", http.StatusTemporaryRedirect},
		{"GET", "/master/redirect", http.StatusTemporaryRedirect},
		{"GET", "/state.json", http.StatusTemporaryRedirect},
		{"POST", "/master/teardown", http.StatusTemporaryRedirect},
	}
	for _, tt := range tests {
		res := do(t, tt.method, standby.url+tt.uri, "")
		if res.status != tt.status || res.header.Get("Location") != leaderURL+tt.uri ||
			res.header.Get(headerLeader) != leaderURL {
			t.Errorf("%s %s: %d Location %q, want %d %q", tt.method, tt.uri,
				res.status, res.header.Get("Location"), tt.status, leaderURL+tt.uri)
		}
	}
	if n := leader.calls.n(); n != before {
		t.Errorf("the leader got %d calls; redirects should not touch it", n-before)
	}

	// A client that follows redirects ends at the leader's state.
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(standby.url + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	st := response{status: resp.StatusCode, header: resp.Header, body: body}.json(t)
	if resp.StatusCode != http.StatusOK || st["id"] != "leader" || st["leader"] != "master@"+leader.hostPort() {
		t.Errorf("followed /master/state: %d id %v leader %v", resp.StatusCode, st["id"], st["leader"])
	}
}

func TestStandbyLoop(t *testing.T) {
	ns := eventstest.StartNATS(t)
	leader := serveMaster(t, ns, "leader", "", true)
	standby := serveMaster(t, ns, "standby", "", false)
	follow(standby.m, leader.m.selfInfo())
	before := leader.calls.n()

	res := do(t, "GET", standby.url+"/v2/apps", "",
		headerVia, "1.1 10.0.0.7:8080", headerVia, "1.1 "+standby.hostPort())
	if res.status != http.StatusBadGateway || res.json(t)["message"] != msgLoop {
		t.Errorf("a call that passed here before: %d %s", res.status, res.body)
	}
	if n := leader.calls.n(); n != before {
		t.Errorf("a looping call reached the leader")
	}

	// Two standbys that each believe the other leads.
	a := serveMaster(t, ns, "a", "", false)
	b := serveMaster(t, ns, "b", "", false)
	follow(a.m, b.m.selfInfo())
	follow(b.m, a.m.selfInfo())
	res = do(t, "POST", a.url+"/v2/apps", webApp)
	if res.status != http.StatusBadGateway || res.json(t)["message"] != msgLoop {
		t.Errorf("a -> b -> a: %d %s", res.status, res.body)
	}
	if a.calls.n() != 2 || b.calls.n() != 1 {
		t.Errorf("a got %d calls, b %d; want 2 and 1", a.calls.n(), b.calls.n())
	}
	if via := b.calls.last(t).header.Get(headerVia); via != "1.1 "+a.hostPort() {
		t.Errorf("b received via %q", via)
	}
	if via := a.calls.last(t).header.Values(headerVia); len(via) != 1 || via[0] != "1.1 "+a.hostPort()+", 1.1 "+b.hostPort() {
		t.Errorf("a received via %q", via)
	}
}

func TestStandbyWithoutLeader(t *testing.T) {
	ns := eventstest.StartNATS(t)
	leader := serveMaster(t, ns, "leader", "", true)
	standby := serveMaster(t, ns, "standby", "", false)

	// None known.
	for _, c := range []struct{ method, path string }{
		{"GET", "/v2/apps"}, {"POST", "/v2/apps"}, {"GET", "/v2/events"}, {"GET", "/master/state"},
	} {
		res := do(t, c.method, standby.url+c.path, "")
		if res.status != http.StatusBadGateway || res.header.Get("Content-Type") != "application/json" ||
			res.json(t)["message"] != msgNoLeader || res.header.Get(headerLeader) != "" {
			t.Errorf("%s %s without a leader: %d %v %s", c.method, c.path, res.status, res.header, res.body)
		}
	}
	res := do(t, "GET", standby.url+"/v2/leader", "")
	if res.status != http.StatusNotFound || res.json(t)["message"] != "There is no leader" {
		t.Errorf("leader without one: %d %s", res.status, res.body)
	}
	if info := do(t, "GET", standby.url+"/v2/info", "").json(t); info["elected"] != false || info["leader"] != nil {
		t.Errorf("info without a leader: elected %v leader %v", info["elected"], info["leader"])
	}
	if res := do(t, "GET", standby.url+"/ping", ""); res.status != http.StatusOK {
		t.Errorf("ping without a leader: %d", res.status)
	}

	// One named that does not answer.
	follow(standby.m, infoAt(t, deadAddr(t)))
	res = do(t, "GET", standby.url+"/v2/apps", "")
	if res.status != http.StatusBadGateway || res.json(t)["message"] != msgRefused {
		t.Errorf("dead leader: %d %s", res.status, res.body)
	}

	// This master itself, named but not leading yet.
	follow(standby.m, standby.m.selfInfo())
	res = do(t, "GET", standby.url+"/v2/apps", "")
	if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
		t.Errorf("named itself: %d %v %s", res.status, res.header, res.body)
	}
	if n := standby.calls.n(); n != 9 {
		t.Errorf("the standby got %d calls, want 9: it forwarded to itself", n)
	}

	// Each call goes where the standby believes the leader is then.
	follow(standby.m, leader.m.selfInfo())
	if res := do(t, "GET", standby.url+"/v2/apps", ""); res.status != http.StatusOK {
		t.Errorf("once the leader is known: %d %s", res.status, res.body)
	}
}

// A call sent on finishes at the master it reached, whatever the standby
// learns meanwhile.
func TestStandbyLeaderChangesMidCall(t *testing.T) {
	ns := eventstest.StartNATS(t)
	leader := serveMaster(t, ns, "leader", "", true)
	standby := serveMaster(t, ns, "standby", "", false)
	follow(standby.m, leader.m.selfInfo())

	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	leader.calls.mu.Lock()
	leader.calls.hold = func(r *http.Request) {
		if r.Header.Get("X-Test-Hold") != "" {
			close(arrived)
			<-release
		}
	}
	leader.calls.mu.Unlock()

	type result struct {
		res response
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := send("POST", standby.url+"/v2/apps", webApp, "X-Test-Hold", "1")
		done <- result{res, err}
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the call never reached the leader")
	}
	follow(standby.m, infoAt(t, deadAddr(t)))
	once.Do(func() { close(release) })
	select {
	case r := <-done:
		if r.err != nil || r.res.status != http.StatusCreated {
			t.Errorf("the held call: %v %d %s", r.err, r.res.status, r.res.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held call never finished")
	}
	if res := do(t, "GET", standby.url+"/v2/apps", ""); res.status != http.StatusBadGateway {
		t.Errorf("the next call went to %d, want 502 from the new, dead leader", res.status)
	}
}

package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

func intp(i int) *int { return &i }

// serverPort is the port of an httptest server on 127.0.0.1.
func serverPort(t *testing.T, s *httptest.Server) int {
	t.Helper()
	return s.Listener.Addr().(*net.TCPAddr).Port
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

func TestProbeHTTP(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(200)
		case "/redirect":
			http.Redirect(w, r, "/missing", http.StatusFound)
		case "/boom":
			w.WriteHeader(500)
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	tg := Target{Host: "127.0.0.1", Ports: []int{serverPort(t, srv)}}

	cases := []struct {
		path    string
		wantErr string // "" for healthy
	}{
		{"/ok", ""},
		{"/redirect", ""}, // 3xx is healthy, and not followed
		{"/boom", "status 500 Internal Server Error"},
		{"/missing", "status 404 Not Found"},
		{"/slow", "timeout"},
	}
	for _, c := range cases {
		hc := events.HealthCheck{Protocol: "HTTP", Path: c.path, PortIndex: intp(0)}
		err := Probe(context.Background(), hc, tg, 300*time.Millisecond)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v, want healthy", c.path, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: %v, want an error with %q", c.path, err, c.wantErr)
		case err != nil && !strings.Contains(err.Error(), "GET http://127.0.0.1:"):
			t.Errorf("%s: cause %q does not say what was probed", c.path, err)
		}
	}
}

func TestProbeHTTPSSkipsVerification(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	tg := Target{Host: "127.0.0.1", Ports: []int{serverPort(t, srv)}}
	for _, proto := range []string{"HTTPS", "MESOS_HTTPS"} {
		hc := events.HealthCheck{Protocol: proto, Path: "/", PortIndex: intp(0)}
		if err := Probe(context.Background(), hc, tg, 5*time.Second); err != nil {
			t.Errorf("%s against a self-signed certificate: %v", proto, err)
		}
	}
}

func TestHTTPVerdict(t *testing.T) {
	cases := []struct {
		code      int
		ignore1xx bool
		want      string // "ok", "ignored", "fail"
	}{
		{101, false, "fail"},
		{101, true, "ignored"},
		{199, true, "ignored"},
		{200, false, "ok"},
		{204, false, "ok"},
		{302, false, "ok"},
		{399, false, "ok"},
		{400, true, "fail"},
		{404, false, "fail"},
		{503, false, "fail"},
	}
	for _, c := range cases {
		err := httpVerdict("GET x", c.code, strconv.Itoa(c.code), c.ignore1xx)
		got := "fail"
		switch {
		case err == nil:
			got = "ok"
		case errors.Is(err, ErrIgnored):
			got = "ignored"
		}
		if got != c.want {
			t.Errorf("%d (ignoreHttp1xx %v): %s, want %s", c.code, c.ignore1xx, got, c.want)
		}
	}
}

// TestProbeSecondPort checks that portIndex picks the task's port and that
// `port` overrides it.
func TestProbeSecondPort(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	closed, open := closedPort(t), serverPort(t, srv)
	tg := Target{Host: "127.0.0.1", Ports: []int{closed, open}}
	ctx := context.Background()

	for _, proto := range []string{"HTTP", "TCP", "MESOS_HTTP", "MESOS_TCP"} {
		if err := Probe(ctx, events.HealthCheck{Protocol: proto, PortIndex: intp(1)}, tg, 5*time.Second); err != nil {
			t.Errorf("%s portIndex 1: %v", proto, err)
		}
		if err := Probe(ctx, events.HealthCheck{Protocol: proto, PortIndex: intp(0)}, tg, 5*time.Second); err == nil {
			t.Errorf("%s portIndex 0 (closed): healthy", proto)
		}
		if err := Probe(ctx, events.HealthCheck{Protocol: proto}, tg, 5*time.Second); err == nil {
			t.Errorf("%s no portIndex (0, closed): healthy", proto)
		}
		if err := Probe(ctx, events.HealthCheck{Protocol: proto, Port: intp(open)}, Target{Host: "127.0.0.1"}, 5*time.Second); err != nil {
			t.Errorf("%s port %d: %v", proto, open, err)
		}
	}
	err := Probe(ctx, events.HealthCheck{Protocol: "TCP", PortIndex: intp(2)}, tg, time.Second)
	if err == nil || !strings.Contains(err.Error(), "portIndex 2") {
		t.Errorf("portIndex out of range: %v", err)
	}
}

func TestProbeTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := l.Addr().(*net.TCPAddr).Port
	closed := closedPort(t)
	tg := Target{Host: "127.0.0.1", Ports: []int{open, closed}}
	if err := Probe(context.Background(), events.HealthCheck{Protocol: "TCP", PortIndex: intp(0)}, tg, 5*time.Second); err != nil {
		t.Errorf("open port: %v", err)
	}
	err = Probe(context.Background(), events.HealthCheck{Protocol: "TCP", PortIndex: intp(1)}, tg, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "connect 127.0.0.1:"+strconv.Itoa(closed)) {
		t.Errorf("closed port: %v", err)
	}
}

func TestProbeUnknownProtocol(t *testing.T) {
	err := Probe(context.Background(), events.HealthCheck{Protocol: "UDP", PortIndex: intp(0)}, Target{Ports: []int{1}}, time.Second)
	if err == nil || !strings.Contains(err.Error(), `"UDP"`) {
		t.Errorf("UDP: %v", err)
	}
	if err := Probe(context.Background(), events.HealthCheck{Protocol: "COMMAND"}, Target{}, time.Second); err == nil {
		t.Error("COMMAND without a command: healthy")
	}
}

func command(value string) events.HealthCheck {
	return events.HealthCheck{Protocol: "COMMAND", Command: &struct {
		Value string `json:"value"`
	}{Value: value}}
}

func TestProbeCommand(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tg := Target{Dir: dir, Env: []string{"PATH=" + os.Getenv("PATH"), "MESOS_TASK_ID=web.1"}}
	cases := []struct {
		cmd     string
		wantErr string
	}{
		{"exit 0", ""},
		{`test -f ready && test "$MESOS_TASK_ID" = web.1`, ""}, // the task's sandbox and env
		{"exit 1", "exited with status 1"},
		{"kill -9 $$", "terminated by signal 9"},
	}
	for _, c := range cases {
		err := Probe(context.Background(), command(c.cmd), tg, 5*time.Second)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%q: %v, want healthy", c.cmd, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%q: %v, want an error with %q", c.cmd, err, c.wantErr)
		}
	}
}

// TestProbeCommandTimeout runs a command that outlives its timeout, with
// a child in the background: both must be gone when Probe returns.
func TestProbeCommandTimeout(t *testing.T) {
	dir := t.TempDir()
	tg := Target{Dir: dir, Env: []string{"PATH=" + os.Getenv("PATH")}}
	start := time.Now()
	err := Probe(context.Background(), command(`sleep 100 & echo $$ > pgid; sleep 100`), tg, time.Second)
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("sleeping command: %v, want a timeout", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Probe took %v with a 1s timeout", took)
	}
	assertGroupGone(t, dir)
}

// TestProbeCommandBackground checks that a command that exits leaves
// nothing running behind it.
func TestProbeCommandBackground(t *testing.T) {
	dir := t.TempDir()
	tg := Target{Dir: dir, Env: []string{"PATH=" + os.Getenv("PATH")}}
	if err := Probe(context.Background(), command(`sleep 100 & echo $$ > pgid`), tg, 5*time.Second); err != nil {
		t.Fatalf("command: %v", err)
	}
	assertGroupGone(t, dir)
}

func TestProbeCommandStopped(t *testing.T) {
	dir := t.TempDir()
	tg := Target{Dir: dir, Env: []string{"PATH=" + os.Getenv("PATH")}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Probe(ctx, command(`echo $$ > pgid; exec sleep 100`), tg, time.Minute) }()
	waitFor(t, "the command to start", func() bool {
		data, _ := os.ReadFile(filepath.Join(dir, "pgid"))
		return len(data) > 0
	})
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("stopped command: healthy")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Probe did not return after its context ended")
	}
	assertGroupGone(t, dir)
}

// assertGroupGone checks that no process is left in the group whose id
// the command wrote to dir/pgid.
func assertGroupGone(t *testing.T, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "pgid"))
	if err != nil {
		t.Fatalf("the command did not record its group: %v", err)
	}
	pgid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	// SIGKILL is asynchronous: the members die shortly after.
	waitFor(t, "group "+strconv.Itoa(pgid)+" gone", func() bool { return len(groupMembers(pgid)) == 0 })
}

// groupMembers lists the live (non-zombie) processes in process group pgid.
func groupMembers(pgid int) []int {
	dirs, _ := os.ReadDir("/proc")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(data), ')')
		f := strings.Fields(string(data[i+1:]))
		// f[0] is the state, f[2] the process group.
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			out = append(out, pid)
		}
	}
	return out
}

// waitFor polls cond until it holds, for at most 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

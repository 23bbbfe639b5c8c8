package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer that a command may write while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const (
	evRunning = `{"slaveId":"a1","taskId":"web_app.1","taskStatus":"TASK_RUNNING","message":"","appId":"/web/app","host":"node1","ports":[31000],"eventType":"status_update_event","timestamp":"2024-05-01T12:00:00.000Z"}`
	evOther   = `{"slaveId":"a1","taskId":"db.1","taskStatus":"TASK_FAILED","message":"boom","appId":"/db","host":"node1","ports":[],"eventType":"status_update_event","timestamp":"2024-05-01T12:00:01.000Z"}`
	evResync  = `{"eventType":"resync","timestamp":"2024-05-01T12:00:02.000Z","lastEventId":"1-2","snapshot":"/v2/apps?embed=apps.tasks","reason":"refetch"}`
)

// sseServer answers /v2/events: the first connection gets two events and
// is closed; the next ones get a resync and stay open. It records each
// connection's Last-Event-ID and query.
type sseServer struct {
	mu      sync.Mutex
	conns   int
	lastIDs []string
	queries []string
}

func (s *sseServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.conns++
	n := s.conns
	s.lastIDs = append(s.lastIDs, r.Header.Get("Last-Event-ID"))
	s.queries = append(s.queries, r.URL.RawQuery)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	if n == 1 {
		fmt.Fprintf(w, "id: 1-1\nevent: status_update_event\ndata: %s\n\n", evRunning)
		fmt.Fprintf(w, ": ping\n\nid: 1-2\nevent: status_update_event\ndata: %s\n\n", evOther)
		return
	}
	fmt.Fprintf(w, "id: 1-9\nevent: resync\ndata: %s\n\n", evResync)
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

func (s *sseServer) seen() (lastIDs, queries []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lastIDs...), append([]string(nil), s.queries...)
}

// runEventsUntil runs atoll events until its output holds want.
func runEventsUntil(t *testing.T, want string, args ...string) (code int, out, errOut string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() { done <- runEvents(ctx, args, &stdout, &stderr) }()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(stdout.String(), want) {
		select {
		case code := <-done:
			t.Fatalf("atoll events exited (%d) before printing %q:\n%s\n%s", code, want, stdout.String(), stderr.String())
		case <-deadline:
			t.Fatalf("no %q after 10s:\n%s\n%s", want, stdout.String(), stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	return <-done, stdout.String(), stderr.String()
}

func TestEventsPlainLinesAndReconnect(t *testing.T) {
	s := &sseServer{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	code, out, errOut := runEventsUntil(t, "resync", "--master", srv.URL, "--type", "status_update_event,resync")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got:\n%s", out)
	}
	if !strings.Contains(lines[0], "status_update_event") || !strings.Contains(lines[0], "/web/app") ||
		!strings.Contains(lines[0], "web_app.1 TASK_RUNNING on node1:31000") {
		t.Errorf("line 1: %q", lines[0])
	}
	if !strings.Contains(lines[1], "db.1 TASK_FAILED on node1 (boom)") {
		t.Errorf("line 2: %q", lines[1])
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("colour codes in output that is not a terminal:\n%q", out)
	}
	if !strings.Contains(errOut, "reconnecting") || !strings.Contains(errOut, "from event 1-2") {
		t.Errorf("stderr: %q", errOut)
	}
	lastIDs, queries := s.seen()
	if len(lastIDs) < 2 || lastIDs[0] != "" || lastIDs[1] != "1-2" {
		t.Errorf("Last-Event-ID per connection %q, want none then 1-2", lastIDs)
	}
	if queries[0] != "event_type=status_update_event&event_type=resync" {
		t.Errorf("query %q", queries[0])
	}
}

func TestEventsJSONForOneApp(t *testing.T) {
	srv := httptest.NewServer(&sseServer{})
	defer srv.Close()
	code, out, _ := runEventsUntil(t, `"taskId":"web_app.1"`, "--json", "--app", "web/app", "--master", srv.URL)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if got := strings.TrimSpace(out); got != evRunning {
		t.Fatalf("--json --app /web/app printed:\n%s\nwant only:\n%s", got, evRunning)
	}
}

func TestEventsColours(t *testing.T) {
	var b bytes.Buffer
	if colorOut(&b) {
		t.Fatal("a buffer is not a terminal")
	}
	p := eventPrinter{w: &b, color: true}
	p.print(streamEvent{typ: "status_update_event", data: []byte(evRunning)})
	p.print(streamEvent{typ: "status_update_event", data: []byte(evOther)})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if !strings.HasPrefix(lines[0], ansiGreen) || !strings.HasSuffix(lines[0], ansiReset) || !strings.HasPrefix(lines[1], ansiRed) {
		t.Fatalf("colours: %q", lines)
	}
}

func TestEventsFirstConnectionFails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	code, _, errOut := runCLI(t, runEvents, "--master", srv.URL)
	if code != cliExitError || !strings.Contains(errOut, "404") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

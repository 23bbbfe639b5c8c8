package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSandbox serves one task's stdout and stderr as the master's
// /v2/tasks/{id}/files/read does.
type fakeSandbox struct {
	mu    sync.Mutex
	files map[string]string
}

func (f *fakeSandbox) set(name, data string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[name] = data
}

func (f *fakeSandbox) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v2/tasks/web.1/files/read" {
		http.Error(w, `{"message":"Task 'x' does not exist"}`, http.StatusNotFound)
		return
	}
	f.mu.Lock()
	data, ok := f.files[r.URL.Query().Get("path")]
	f.mu.Unlock()
	if !ok {
		http.Error(w, `{"message":"not served"}`, http.StatusBadRequest)
		return
	}
	offset, _ := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	length, _ := strconv.ParseInt(r.URL.Query().Get("length"), 10, 64)
	out := map[string]any{"data": "", "offset": len(data)}
	if offset >= 0 {
		end := min(int64(len(data)), offset+length)
		out = map[string]any{"data": data[min(offset, end):end], "offset": offset}
	}
	_ = json.NewEncoder(w).Encode(out)
}

// syncBuffer is a bytes.Buffer the test reads while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTaskLogs(t *testing.T) {
	sb := &fakeSandbox{files: map[string]string{"stdout": "line 1\nline 2\n", "stderr": "oops\n"}}
	srv := httptest.NewServer(http.HandlerFunc(sb.serve))
	t.Cleanup(srv.Close)

	if code, out, errs := runCLI(t, runTask, "logs", "web.1", "--master", srv.URL); code != 0 || out != "line 1\nline 2\n" {
		t.Fatalf("logs: exit %d %q %q", code, out, errs)
	}
	if code, out, _ := runCLI(t, runTask, "logs", "--stderr", "web.1", "--master", srv.URL); code != 0 || out != "oops\n" {
		t.Fatalf("logs --stderr: exit %d %q", code, out)
	}
	if code, _, errs := runCLI(t, runTask, "logs", "web.9", "--master", srv.URL); code != 1 || !strings.Contains(errs, "does not exist") {
		t.Fatalf("unknown task: exit %d %q", code, errs)
	}

	// -f prints what the task writes next, and starts over when the file
	// is rotated.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- runTask(ctx, []string{"logs", "-f", "web.1", "--master", srv.URL}, &out, &errb) }()
	waitOutput := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for out.String() != want {
			if time.Now().After(deadline) {
				t.Fatalf("output %q, want %q (stderr %q)", out.String(), want, errb.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitOutput("line 1\nline 2\n")
	sb.set("stdout", "line 1\nline 2\nline 3\n")
	waitOutput("line 1\nline 2\nline 3\n")
	sb.set("stdout", "new\n")
	waitOutput("line 1\nline 2\nline 3\nnew\n")
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("-f interrupted: exit %d %q", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("-f did not stop with its context")
	}
}

package echo

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"HOST": "127.0.0.3", "PORT0": "31005", "MESOS_TASK_ID": "web.1",
		"MARATHON_APP_ID": "/web", "MARATHON_APP_VERSION": "2024-01-01T00:00:00.000Z",
	}
	got := ConfigFromEnv(func(k string) string { return env[k] })
	want := Config{Addr: "127.0.0.3:31005", TaskID: "web.1", AppID: "/web", Host: "127.0.0.3", Version: "2024-01-01T00:00:00.000Z"}
	if got != want {
		t.Errorf("ConfigFromEnv = %+v, want %+v", got, want)
	}
	if got := ConfigFromEnv(func(string) string { return "" }); got.Addr != "127.0.0.1:8000" {
		t.Errorf("default Addr = %q, want 127.0.0.1:8000", got.Addr)
	}
}

func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, Config{TaskID: "web.1", AppID: "/web", Host: "node1", Version: "v1"})
	}()
	base := "http://" + ln.Addr().String()

	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET / = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.HasSuffix(string(body), "}\n") {
		t.Errorf("body %q lacks trailing newline", body)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"taskId": "web.1", "appId": "/web", "host": "node1", "port": float64(port), "version": "v1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("reply %v has extra fields", got)
	}

	resp, err = http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("GET /health = %d %q", resp.StatusCode, body)
	}
	resp, err = http.Get(base + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /nope = %d, want 404", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestRunBadAddr(t *testing.T) {
	if err := Run(context.Background(), Config{Addr: "127.0.0.1:notaport"}); err == nil {
		t.Fatal("Run with a bad address: no error")
	}
}

// TestHealthSwitches: /health fails while warming up and while switched
// to failing, and recovers from both.
func TestHealthSwitches(t *testing.T) {
	h := &Health{Until: time.Now().Add(time.Hour)}
	srv := httptest.NewServer(Handler(Reply{}, h))
	defer srv.Close()
	status := func(method, path string) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("GET", "/health"); got != 500 {
		t.Fatalf("warming up: %d, want 500", got)
	}
	if got := status("GET", "/"); got != 200 {
		t.Fatalf("GET / while warming up: %d, want 200", got)
	}
	h.Until = time.Time{}
	if got := status("GET", "/health"); got != 200 {
		t.Fatalf("warm: %d, want 200", got)
	}
	status("POST", "/health/fail")
	if got := status("GET", "/health"); got != 500 {
		t.Fatalf("failing: %d, want 500", got)
	}
	status("POST", "/health/ok")
	if got := status("GET", "/health"); got != 200 {
		t.Fatalf("recovered: %d, want 200", got)
	}
}

package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleService() Service {
	return Service{
		AppID: "/demo/echo", Backend: "demo_echo_10000", ServicePort: 10000,
		BindAddr: "*", Mode: "http", Balance: "roundrobin", Sticky: true,
		RedirectToHTTPS: true, Vhosts: []string{"echo.example"}, Path: "/api",
		ProxyPassPath: "/api", BindOptions: "accept-proxy",
		HealthCheck: &HealthCheck{Protocol: "HTTP", Path: "/health", IntervalMS: 2000, TimeoutMS: 1000, Fall: 3},
	}
}

// TestEveryTemplateRenders is CoreDNS's README check for templates: each
// embedded default parses and renders with representative data.
func TestEveryTemplateRenders(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	g := Global{MaxConn: 9000, HardStopAfter: "30s", MaxReloads: 5, SocketPath: "/run/haproxy.sock",
		StatsBind: "127.0.0.1:9090", BindAddr: "*", HTTPPort: 80, HTTPSPort: 443,
		HostMapPath: "/etc/haproxy/hosts.map", PathMapPath: "/etc/haproxy/paths.map", Certs: []string{"/etc/ssl/a.pem"}}
	svc := sampleService()
	for _, name := range Names {
		var data any = svc
		switch name {
		case Head, HTTPFrontendHead, HTTPSFrontendHead:
			data = g
		case HTTPFrontendACL, HTTPFrontendACLWithPath:
			data = Vhost{Service: svc, Host: "echo.example"}
		}
		var b strings.Builder
		if err := s.Execute(&b, name, data); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if s.Source(name) != "default" {
			t.Errorf("%s: source %q", name, s.Source(name))
		}
		if name != BackendServerOptions && strings.TrimSpace(b.String()) == "" {
			t.Errorf("%s rendered nothing", name)
		}
	}
	var b strings.Builder
	_ = s.Execute(&b, Head, g)
	for _, want := range []string{"level admin", "expose-fd listeners", "hard-stop-after 30s", "mworker-max-reloads 5", "maxconn 9000", "listen stats"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("HAPROXY_HEAD lacks %q", want)
		}
	}
}

func TestEveryNameEmbedded(t *testing.T) {
	ents, err := defaults.ReadDir("default")
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(Names) {
		t.Fatalf("%d embedded files, %d names", len(ents), len(Names))
	}
	for _, n := range Names {
		if !Known(n) {
			t.Errorf("%s not embedded", n)
		}
	}
}

func TestLoadOverride(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FrontendBackendGlue), []byte("  default_backend {{.Backend}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := s.Execute(&b, FrontendBackendGlue, Service{Backend: "x_1"}); err != nil {
		t.Fatal(err)
	}
	if b.String() != "  default_backend x_1\n" {
		t.Errorf("got %q", b.String())
	}
	if s.Source(FrontendBackendGlue) != filepath.Join(dir, FrontendBackendGlue) || s.Source(Head) != "default" {
		t.Errorf("sources: %q %q", s.Source(FrontendBackendGlue), s.Source(Head))
	}
}

func TestLoadParseErrorNamesTemplateAndLine(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, BackendHead), []byte("backend {{.Backend}}\n  balance {{.Balance\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(err.Error(), "HAPROXY_BACKEND_HEAD:2") {
		t.Errorf("error %q does not name template and line", err)
	}
}

func TestParseOverrides(t *testing.T) {
	o, err := ParseOverrides(map[string]string{
		"HAPROXY_0_BACKEND_HEAD": "backend {{.Backend}}\n",
		"HAPROXY_0_VHOST":        "a.example",
		"HAPROXY_1_BACKEND_HEAD": "{{",
	}, 0)
	if err != nil || len(o) != 1 || o[BackendHead] == nil {
		t.Fatalf("o=%v err=%v", o, err)
	}
	if _, err := ParseOverrides(map[string]string{"HAPROXY_1_BACKEND_HEAD": "{{"}, 1); err == nil || !strings.Contains(err.Error(), "HAPROXY_1_BACKEND_HEAD") {
		t.Errorf("err = %v", err)
	}
	if _, err := ParseOverrides(map[string]string{"HAPROXY_0_HEAD": "global"}, 0); err == nil {
		t.Error("per-port HAPROXY_HEAD accepted")
	}
}

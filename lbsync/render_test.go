package lbsync

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/templates"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func ptr[T any](v T) *T { return &v }

// goldenWorld is the small state of the golden tests: one of each feature.
func goldenWorld() *world {
	w := newWorld()
	ext := func(kv ...string) map[string]string {
		m := map[string]string{"HAPROXY_GROUP": "external"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	// tcp app on a service port; one task elsewhere is unreachable, one staging.
	w.app("/demo/echo", []int{10000}, ext())
	w.task("/demo/echo", "echo.1", "a1", 31000)
	w.task("/demo/echo", "echo.2", "a2", 31001)
	w.s.Tasks["echo.3"] = events.Task{ID: "echo.3", AppID: "/demo/echo", AgentID: "a1", State: events.TaskRunning,
		Ports: []int{31002}, IPAddresses: []events.IPAddress{{IPAddress: "172.17.0.5", Protocol: "IPv4"}}}
	w.task("/demo/echo", "echo.4", "gone", 31003)
	w.s.Tasks["echo.5"] = events.Task{ID: "echo.5", AppID: "/demo/echo", AgentID: "a1", State: events.TaskStaging, Ports: []int{31004}}
	// http app with vhosts, sticky sessions and a redirect to https.
	w.app("/web", []int{10001}, ext("HAPROXY_0_VHOST", "web.example, WWW.web.example",
		"HAPROXY_0_STICKY", "true", "HAPROXY_0_REDIRECT_TO_HTTPS", "true", "HAPROXY_0_BALANCE", "leastconn"))
	w.task("/web", "web.1", "a1", 31010)
	// path routing with a health check: only the healthy task serves.
	api := w.app("/api", []int{10002}, ext("HAPROXY_0_VHOST", "web.example", "HAPROXY_0_PATH", "/api",
		"HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", "/api"))
	api.HealthChecks = []events.HealthCheck{{Protocol: "HTTP", Path: "/health", IntervalSeconds: 2, TimeoutSeconds: 1, MaxConsecutiveFailures: 3}}
	w.s.Apps["/api"] = *api
	w.s.Tasks["api.1"] = events.Task{ID: "api.1", AppID: "/api", AgentID: "a1", State: events.TaskRunning, Ports: []int{31020}, Healthy: ptr(true)}
	w.s.Tasks["api.2"] = events.Task{ID: "api.2", AppID: "/api", AgentID: "a2", State: events.TaskRunning, Ports: []int{31021}, Healthy: ptr(false)}
	// group filtering: app-wide and per port.
	w.app("/internal", []int{10003}, map[string]string{"HAPROXY_GROUP": "internal"})
	w.task("/internal", "internal.1", "a1", 31030)
	w.app("/nogroup", []int{10004}, nil)
	w.app("/multi", []int{10005, 10006}, map[string]string{"HAPROXY_0_GROUP": "external", "HAPROXY_1_GROUP": "internal",
		"HAPROXY_0_BIND_ADDR": "127.0.0.1", "HAPROXY_0_MODE": "http"})
	w.task("/multi", "multi.1", "a2", 31040, 31041)
	// per-port template override and a port override.
	w.app("/custom", []int{10007}, ext("HAPROXY_0_BACKEND_HEAD", "\nbackend {{.Backend}}\n  balance source\n  mode {{.Mode}}\n  timeout server 5m\n",
		"HAPROXY_0_PORT", "20007"))
	w.task("/custom", "custom.1", "a1", 31050)
	// a vhost with its own certificate: the :443 frontend appears.
	w.app("/secure", []int{10008}, ext("HAPROXY_0_VHOST", "secure.example", "HAPROXY_0_SSL_CERT", "/etc/ssl/secure.pem",
		"HAPROXY_0_BIND_OPTIONS", "accept-proxy"))
	// disabled port.
	w.app("/off", []int{10009}, ext("HAPROXY_0_ENABLED", "false"))
	// an invalid label and an invalid override: each leaves only its app out.
	w.app("/bad", []int{10010}, ext("HAPROXY_0_BALANCE", "roundrobin\n  stats enable"))
	w.app("/badtmpl", []int{10011}, ext("HAPROXY_0_BACKEND_HEAD", "\nbackend {{.Backend}}\n  balanse roundrobin\n"))
	// a bridged container: its service port is its port mapping's, its
	// backend its agent's address at its host port, not its container's.
	w.s.Apps["/bridged"] = events.App{ID: "/bridged", Labels: ext(),
		Networks: []events.Network{{Mode: events.NetworkBridge}},
		Container: &events.Container{Type: events.ContainerDocker, Docker: &events.Docker{Image: "echo:1"},
			PortMappings: []events.PortMapping{{ContainerPort: 8080, ServicePort: 10012, Protocol: "tcp"}}}}
	w.s.Tasks["bridged.1"] = events.Task{ID: "bridged.1", AppID: "/bridged", AgentID: "a2", State: events.TaskRunning,
		Ports: []int{31060}, IPAddresses: []events.IPAddress{{IPAddress: "198.18.0.5", Protocol: "IPv4"}}}
	return w
}

func dump(r *Result) string {
	var b strings.Builder
	b.WriteString(r.Config)
	b.WriteString("# ---- host map\n" + r.HostMap)
	b.WriteString("# ---- path map\n" + r.PathMap)
	b.WriteString("# ---- slots\n")
	names := make([]string, 0, len(r.Backends))
	for n := range r.Backends {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, s := range r.Backends[n].Slots {
			if !s.Free() {
				fmt.Fprintf(&b, "%s %s %s:%d\n", s.Name, s.TaskID, s.Addr, s.Port)
			}
		}
	}
	b.WriteString("# ---- errors\n")
	for _, e := range r.Errors {
		b.WriteString(e.Error() + "\n")
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from golden (run with -update to accept):\n%s", path, got)
	}
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"external", Config{}},
		{"internal", Config{Group: "internal", SlotStep: 4, BindAddr: "127.0.10.1", HTTPPort: 8080, HTTPSPort: 8443,
			MapPath: "/run/atoll/hosts.map", SocketPath: "/run/atoll/admin.sock"}},
		{"all", Config{Group: "*", DefaultCert: "/etc/ssl/default.pem"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, nil, goldenWorld().s, tc.cfg)
			golden(t, tc.name, dump(r))
			if err := Validate(r.Config); err != nil {
				t.Errorf("rendered config does not validate: %v", err)
			}
		})
	}
}

func TestInvalidAppLeftOut(t *testing.T) {
	r := mustRender(t, nil, goldenWorld().s, Config{})
	bad := map[string]bool{}
	for _, e := range r.Errors {
		bad[e.AppID] = true
	}
	if len(bad) != 2 || !bad["/bad"] || !bad["/badtmpl"] {
		t.Fatalf("errors = %v", r.Errors)
	}
	for _, n := range []string{"bad_10010", "badtmpl_10011"} {
		if r.Backends[n] != nil || strings.Contains(r.Config, n) {
			t.Errorf("%s rendered", n)
		}
	}
	for _, n := range []string{"demo_echo_10000", "web_10001", "api_10002", "custom_20007", "multi_10005", "secure_10008"} {
		if r.Backends[n] == nil {
			t.Errorf("%s missing", n)
		}
	}
	for _, n := range []string{"internal_10003", "nogroup_10004", "multi_10006", "off_10009"} {
		if r.Backends[n] != nil {
			t.Errorf("%s served by group external", n)
		}
	}
}

func TestLabelErrors(t *testing.T) {
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"HAPROXY_0_MODE": "udp"}, "MODE"},
		{map[string]string{"HAPROXY_0_PORT": "70000"}, "PORT"},
		{map[string]string{"HAPROXY_0_VHOST": "bad host"}, "VHOST"},
		{map[string]string{"HAPROXY_0_STICKY": "yes please"}, "STICKY"},
		{map[string]string{"HAPROXY_0_PATH": "/x"}, "PATH needs VHOST"},
		{map[string]string{"HAPROXY_0_STICKY": "true"}, "http mode"},
		{map[string]string{"HAPROXY_0_VHOST": "a.example", "HAPROXY_0_MODE": "tcp"}, "conflicts"},
		{map[string]string{"HAPROXY_0_BACKEND_HEAD": "{{.Nope}}"}, "HAPROXY_BACKEND_HEAD"},
		{map[string]string{"HAPROXY_0_BACKEND_HEAD": "{{"}, "HAPROXY_0_BACKEND_HEAD"},
		{map[string]string{"HAPROXY_0_HEAD": "global"}, "cannot be overridden"},
		{map[string]string{"HAPROXY_0_SSL_CERT": "/a b"}, "SSL_CERT"},
	} {
		w := newWorld()
		tc.labels["HAPROXY_GROUP"] = "external"
		w.app("/x", []int{10000}, tc.labels)
		w.app("/ok", []int{10001}, map[string]string{"HAPROXY_GROUP": "external"})
		r := mustRender(t, nil, w.s, Config{})
		if len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Err, tc.want) {
			t.Errorf("%v: errors %v, want one with %q", tc.labels, r.Errors, tc.want)
		}
		if r.Backends["ok_10001"] == nil || r.Backends["x_10000"] != nil {
			t.Errorf("%v: backends %v", tc.labels, r.Backends)
		}
	}
}

func TestConflicts(t *testing.T) {
	w := newWorld()
	g := func(kv ...string) map[string]string {
		m := map[string]string{"HAPROXY_GROUP": "external"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	w.app("/a", []int{10000}, g("HAPROXY_0_VHOST", "a.example"))
	w.app("/b", []int{10000}, g())                               // same service port
	w.app("/c", []int{10002}, g("HAPROXY_0_VHOST", "a.example")) // same vhost
	w.app("/d", []int{10003}, g("HAPROXY_0_PORT", "10000"))      // same port via label
	w.app("/e", []int{10004}, g("HAPROXY_0_VHOST", "e.example")) // fine
	r := mustRender(t, nil, w.s, Config{})
	var got []string
	for _, e := range r.Errors {
		got = append(got, e.AppID)
	}
	if strings.Join(got, ",") != "/b,/c,/d" {
		t.Errorf("errors: %v", r.Errors)
	}
	if r.Hosts["e.example"] != "e_10004" || r.Hosts["a.example"] != "a_10000" {
		t.Errorf("hosts: %v", r.Hosts)
	}
}

func TestBackendName(t *testing.T) {
	for _, tc := range []struct {
		id        string
		port, idx int
		want      string
	}{
		{"/demo/echo", 10000, 0, "demo_echo_10000"},
		{"/a//b-c.d", 80, 0, "a_b_c_d_80"},
		{"/x", 0, 2, "x_p2"},
	} {
		if got := backendName(tc.id, tc.port, tc.idx); got != tc.want {
			t.Errorf("backendName(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

// A broken global template renders nothing: the caller keeps the old config.
func TestBrokenGlobalTemplate(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "HAPROXY_HEAD"), []byte("global\n  maxconn {{.NoSuchField}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := templates.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Render(echoWorld(1).s, Config{}, set); err == nil || !strings.Contains(err.Error(), "HAPROXY_HEAD") {
		t.Errorf("err = %v", err)
	}
}

// A directory template replaces the default for every app.
func TestTemplatesDirOverride(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "HAPROXY_BACKEND_SERVER_OPTIONS"), []byte(" check inter 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := templates.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Render(echoWorld(1).s, Config{}, set)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Config, "  server echo_10000-1 127.0.10.1:31000 check inter 5s\n") ||
		!strings.Contains(r.Config, "  server echo_10000-2 127.0.0.1:1 check inter 5s disabled\n") {
		t.Errorf("server lines:\n%s", r.Config)
	}
}

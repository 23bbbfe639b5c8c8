package lbsync

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseAlerts(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      []Alert
	}{
		{"parse error", "[NOTICE]   (5502) : haproxy version is 2.6.12-1+deb12u4\n" +
			"[ALERT]    (5502) : config : parsing [/etc/h/a.cfg:9] : 'bind 127.0.0.1:18001' in section 'frontend': unknown keyword 'no-such-keyword'.\n" +
			"[ALERT]    (5502) : config : Error(s) found in configuration file : /etc/h/a.cfg\n" +
			"[ALERT]    (5502) : config : Fatal errors found in configuration.",
			[]Alert{{File: "/etc/h/a.cfg", Line: 9, Msg: "parsing [/etc/h/a.cfg:9] : 'bind 127.0.0.1:18001' in section 'frontend': unknown keyword 'no-such-keyword'."}}},
		{"proxy check", "[ALERT]    (5735) : config : Proxy 'fe2': unable to find required use_backend: 'nope'.",
			[]Alert{{Proxy: "fe2", Msg: "Proxy 'fe2': unable to find required use_backend: 'nope'."}}},
		{"server check", "[ALERT]    (5735) : config : [a.cfg:23] : 'server be3/s1' : unable to find required proxy 'nope' for tracking.",
			[]Alert{{File: "a.cfg", Line: 23, Proxy: "nope", Msg: "[a.cfg:23] : 'server be3/s1' : unable to find required proxy 'nope' for tracking."}}},
		{"backend named", "[ALERT]    (1) : config : backend 'be_1': no server available.",
			[]Alert{{Proxy: "be_1", Msg: "backend 'be_1': no server available."}}},
		{"warnings only", "[WARNING]  (1) : config : parsing [a.cfg:3] : something", nil},
		{"no pid", "[ALERT] parsing [a.cfg:4] : bad", []Alert{{File: "a.cfg", Line: 4, Msg: "parsing [a.cfg:4] : bad"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseAlerts(tc.out)
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// lineOf is the 1-based number of the first config line containing s.
func lineOf(t *testing.T, cfg, s string) int {
	t.Helper()
	for i, l := range strings.Split(cfg, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("no line with %q", s)
	return 0
}

func TestBlame(t *testing.T) {
	r := mustRender(t, nil, goldenWorld().s, Config{})
	const path = "/run/h/.haproxy.cfg.tmp1"
	for _, tc := range []struct {
		name  string
		alert Alert
		app   string // "" when nobody is to blame
		port  int
	}{
		{"frontend line", Alert{File: path, Line: lineOf(t, r.Config, "bind *:10000")}, "/demo/echo", 0},
		{"backend line", Alert{File: path, Line: lineOf(t, r.Config, "balance leastconn")}, "/web", 0},
		{"server line", Alert{File: path, Line: lineOf(t, r.Config, "server api_10002-8 ")}, "/api", 0},
		{"own :80 rule", Alert{File: path, Line: lineOf(t, r.Config, "-m str www.web.example")}, "/web", 0},
		{"head line", Alert{File: path, Line: lineOf(t, r.Config, "maxconn 9000")}, "", 0},
		{"past the end", Alert{File: path, Line: strings.Count(r.Config, "\n") + 5}, "", 0},
		{"other file", Alert{File: "/run/h/hosts.map", Line: lineOf(t, r.Config, "bind *:10000")}, "", 0},
		{"proxy name", Alert{Proxy: "multi_10005"}, "/multi", 0},
		{"unknown proxy", Alert{Proxy: "stats"}, "", 0},
		{"nothing", Alert{Msg: "something"}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.alert.Msg = "msg at " + path
			blamed, unblamed := r.Blame([]Alert{tc.alert}, path)
			if tc.app == "" {
				if len(blamed) != 0 || len(unblamed) != 1 {
					t.Fatalf("blamed %+v, unblamed %+v; want nobody", blamed, unblamed)
				}
				return
			}
			if len(blamed) != 1 || blamed[0].AppID != tc.app || blamed[0].PortIndex != tc.port || len(unblamed) != 0 {
				t.Fatalf("blamed %+v, unblamed %+v; want %s port %d", blamed, unblamed, tc.app, tc.port)
			}
			if strings.Contains(blamed[0].Err, path) || !strings.Contains(blamed[0].Err, "msg at haproxy.cfg") {
				t.Errorf("error %q: want the temp file's name replaced", blamed[0].Err)
			}
		})
	}
	// Two alerts in one app port blame it once.
	l := lineOf(t, r.Config, "bind *:10000")
	if blamed, _ := r.Blame([]Alert{{File: path, Line: l}, {File: path, Line: l + 1}}, path); len(blamed) != 1 {
		t.Errorf("blamed %+v, want one", blamed)
	}
}

func TestWithout(t *testing.T) {
	r := mustRender(t, nil, goldenWorld().s, Config{})
	w, err := r.Without([]AppError{{AppID: "/web", PortIndex: 0, Err: "rejected"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"backend web_10001", "frontend web_10001", "-m str web.example"} {
		if strings.Contains(w.Config, gone) {
			t.Errorf("config still has %q", gone)
		}
	}
	if w.Backends["web_10001"] != nil || w.Hosts["web.example"] != "" || strings.Contains(w.HostMap, "web_10001") {
		t.Errorf("web still routed: backends %v hosts %v", w.Backends["web_10001"], w.Hosts)
	}
	if len(w.Errors) != len(r.Errors)+1 || w.Errors[len(w.Errors)-1].AppID != "/web" {
		t.Errorf("errors %+v", w.Errors)
	}
	// Everything else is as rendered: same slots, same text.
	for name, b := range r.Backends {
		if name != "web_10001" && w.Backends[name] != b {
			t.Errorf("backend %s changed", name)
		}
	}
	if !strings.Contains(w.Config, "backend api_10002") || w.PathMap != r.PathMap {
		t.Error("other apps lost")
	}
	if !Diff(r, &w).Reload {
		t.Error("leaving an app out needs a reload")
	}
	if r.Backends["web_10001"] == nil {
		t.Error("Without changed its receiver")
	}
}

package lbsync

import (
	"testing"

	"github.com/atollhq/atoll/events"
)

// TestServiceMode: tcp unless the port serves HTTP — a vhost, an HTTP
// health check (as marathon-lb), or the MODE label, which has the last word.
func TestServiceMode(t *testing.T) {
	check := func(proto string) []events.HealthCheck {
		return []events.HealthCheck{{Protocol: proto, Path: "/health", IntervalSeconds: 1, TimeoutSeconds: 1}}
	}
	for _, tc := range []struct {
		name   string
		checks []events.HealthCheck
		labels map[string]string
		want   string
	}{
		{"no check", nil, nil, "tcp"},
		{"HTTP check", check("HTTP"), nil, "http"},
		{"MESOS_HTTP check", check("MESOS_HTTP"), nil, "http"},
		{"HTTPS check: the task speaks TLS", check("HTTPS"), nil, "tcp"},
		{"TCP check", check("TCP"), nil, "tcp"},
		{"COMMAND check", check("COMMAND"), nil, "tcp"},
		{"HTTP check, MODE=tcp", check("HTTP"), map[string]string{"HAPROXY_0_MODE": "tcp"}, "tcp"},
		{"vhost", nil, map[string]string{"HAPROXY_0_VHOST": "a.example"}, "http"},
	} {
		app := &events.App{ID: "/web", Labels: tc.labels, HealthChecks: tc.checks,
			PortDefinitions: []events.PortDefinition{{Port: 10001}}}
		cfg := Config{}.withDefaults()
		s, err := service(app, 0, &cfg)
		if err != nil || s == nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if s.Mode != tc.want {
			t.Errorf("%s: mode %s, want %s", tc.name, s.Mode, tc.want)
		}
	}
}

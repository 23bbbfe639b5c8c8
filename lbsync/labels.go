package lbsync

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/templates"
)

// portLabels reads the labels of service port n: HAPROXY_{n}_X first, then
// (for GROUP only, as marathon-lb) the app-wide HAPROXY_X.
type portLabels struct {
	labels map[string]string
	n      int
}

func (p portLabels) get(name string) (string, bool) {
	v, ok := p.labels["HAPROXY_"+strconv.Itoa(p.n)+"_"+name]
	return v, ok
}

var (
	hostRE    = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	pathRE    = regexp.MustCompile(`^/[^\s#;'"]*$`)
	tokenRE   = regexp.MustCompile(`^[^\s#;'"]+$`)
	balanceRE = regexp.MustCompile(`^(roundrobin|static-rr|leastconn|first|source|random(\(\d+\))?|uri( [a-z0-9 -]+)?|url_param [A-Za-z0-9_-]+|hdr\([A-Za-z0-9_-]+\)|rdp-cookie(\([A-Za-z0-9_-]+\))?)$`)
)

// backendName is stable: the app id with every run of other characters
// turned into "_", then the service port (or "p<index>" without one).
func backendName(appID string, servicePort, index int) string {
	b := make([]byte, 0, len(appID)+8)
	sep := false
	for i := 0; i < len(appID); i++ {
		c := appID[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			if sep && len(b) > 0 {
				b = append(b, '_')
			}
			b = append(b, c)
			sep = false
			continue
		}
		sep = true
	}
	b = append(b, '_')
	if servicePort > 0 {
		return string(strconv.AppendInt(b, int64(servicePort), 10))
	}
	return string(strconv.AppendInt(append(b, 'p'), int64(index), 10))
}

// inGroup applies marathon-lb's HAPROXY_GROUP rule: "*" serves every app,
// otherwise an app (or port) is served when one of its groups is served.
func inGroup(served []string, labels map[string]string, n int) bool {
	v, ok := labels["HAPROXY_"+strconv.Itoa(n)+"_GROUP"]
	if !ok {
		v = labels["HAPROXY_GROUP"]
	}
	for _, s := range served {
		if s == "*" {
			return true
		}
		for rest := v; rest != ""; {
			var g string
			g, rest, _ = strings.Cut(rest, ",")
			if g = strings.TrimSpace(g); g != "" && g == s {
				return true
			}
		}
	}
	return false
}

func parseBool(name, v string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, fmt.Errorf("%s=%q: not a boolean", name, v)
	}
	return b, nil
}

// service builds the template data of port n of app from its labels. It
// returns (nil, nil) when the port is not served (disabled, or neither a
// service port nor a vhost).
func service(app *events.App, n int, cfg *Config) (*templates.Service, error) {
	pl := portLabels{labels: app.Labels, n: n}
	for k, v := range app.Labels {
		if strings.HasPrefix(k, "HAPROXY_") && strings.ContainsAny(v, "\n\r") && !isTemplateLabel(k) {
			return nil, fmt.Errorf("label %s: line breaks are only allowed in templates", k)
		}
	}
	if v, ok := pl.get("ENABLED"); ok {
		on, err := parseBool("ENABLED", v)
		if err != nil {
			return nil, err
		}
		if !on {
			return nil, nil
		}
	}
	s := &templates.Service{
		AppID: app.ID, PortIndex: n, ServicePort: app.PortSpecs()[n].Port,
		BindAddr: cfg.BindAddr, Mode: "tcp", Balance: "roundrobin", Labels: app.Labels,
		HealthCheck: healthCheck(app, n),
	}
	if hc := s.HealthCheck; hc != nil && hc.Protocol == "HTTP" {
		// An HTTP service, as marathon-lb has it (not HTTPS: the task
		// speaks TLS). HAProxy then ends requests, not connections, so a
		// task that stops takes no client's keep-alive connection with it.
		s.Mode = "http"
	}
	if v, ok := pl.get("PORT"); ok {
		p, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("PORT=%q: not a port", v)
		}
		s.ServicePort = p
	}
	if v, ok := pl.get("VHOST"); ok {
		for _, h := range strings.Split(v, ",") {
			h = strings.ToLower(strings.TrimSpace(h))
			if h == "" {
				continue
			}
			if !hostRE.MatchString(h) {
				return nil, fmt.Errorf("VHOST: %q is not a host name", h)
			}
			s.Vhosts = append(s.Vhosts, h)
		}
		if len(s.Vhosts) > 0 {
			s.Mode = "http"
		}
	}
	if v, ok := pl.get("MODE"); ok {
		m := strings.ToLower(strings.TrimSpace(v))
		if m != "tcp" && m != "http" {
			return nil, fmt.Errorf("MODE=%q: want tcp or http", v)
		}
		if m == "tcp" && len(s.Vhosts) > 0 {
			return nil, fmt.Errorf("MODE=tcp conflicts with VHOST")
		}
		s.Mode = m
	}
	if v, ok := pl.get("BALANCE"); ok {
		b := strings.TrimSpace(v)
		if !balanceRE.MatchString(b) {
			return nil, fmt.Errorf("BALANCE=%q: not a balance algorithm", v)
		}
		s.Balance = b
	}
	var err error
	if v, ok := pl.get("STICKY"); ok {
		if s.Sticky, err = parseBool("STICKY", v); err != nil {
			return nil, err
		}
	}
	if v, ok := pl.get("REDIRECT_TO_HTTPS"); ok {
		if s.RedirectToHTTPS, err = parseBool("REDIRECT_TO_HTTPS", v); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name string
		re   *regexp.Regexp
		dst  *string
	}{
		{"SSL_CERT", tokenRE, &s.SSLCert},
		{"BIND_ADDR", tokenRE, &s.BindAddr},
		{"PATH", pathRE, &s.Path},
		{"HTTP_BACKEND_PROXYPASS_PATH", pathRE, &s.ProxyPassPath},
	} {
		if v, ok := pl.get(f.name); ok {
			v = strings.TrimSpace(v)
			if !f.re.MatchString(v) {
				return nil, fmt.Errorf("%s=%q: invalid", f.name, v)
			}
			*f.dst = v
		}
	}
	if v, ok := pl.get("BIND_OPTIONS"); ok {
		if strings.ContainsAny(v, "#") {
			return nil, fmt.Errorf("BIND_OPTIONS=%q: invalid", v)
		}
		s.BindOptions = strings.TrimSpace(v)
	}
	if s.Path != "" && len(s.Vhosts) == 0 {
		return nil, fmt.Errorf("PATH needs VHOST")
	}
	if (s.Sticky || s.RedirectToHTTPS || s.ProxyPassPath != "") && s.Mode != "http" {
		return nil, fmt.Errorf("STICKY, REDIRECT_TO_HTTPS and HTTP_BACKEND_PROXYPASS_PATH need http mode")
	}
	if s.ServicePort == 0 && len(s.Vhosts) == 0 {
		return nil, nil
	}
	s.Backend = backendName(app.ID, s.ServicePort, n)
	return s, nil
}

// healthCheck picks the app's first HTTP or TCP check that targets port n.
func healthCheck(app *events.App, n int) *templates.HealthCheck {
	for _, hc := range app.HealthChecks {
		idx := 0
		if hc.PortIndex != nil {
			idx = *hc.PortIndex
		}
		if idx != n || hc.Port != nil {
			continue
		}
		proto := strings.ToUpper(hc.Protocol)
		switch proto {
		case "HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS", "TCP", "MESOS_TCP":
		default:
			continue
		}
		h := &templates.HealthCheck{
			Protocol: strings.TrimPrefix(proto, "MESOS_"), Path: hc.Path,
			IntervalMS: hc.IntervalSeconds * 1000, TimeoutMS: hc.TimeoutSeconds * 1000,
			Fall: hc.MaxConsecutiveFailures,
		}
		if h.Path == "" || !pathRE.MatchString(h.Path) {
			h.Path = "/"
		}
		if h.IntervalMS <= 0 {
			h.IntervalMS = 60000
		}
		if h.TimeoutMS <= 0 {
			h.TimeoutMS = 20000
		}
		if h.Fall <= 0 {
			h.Fall = 3
		}
		return h
	}
	return nil
}

// isTemplateLabel reports whether k is HAPROXY_{n}_<TEMPLATE NAME>.
func isTemplateLabel(k string) bool {
	rest, ok := strings.CutPrefix(k, "HAPROXY_")
	if !ok {
		return false
	}
	i := strings.IndexByte(rest, '_')
	if i <= 0 {
		return false
	}
	if _, err := strconv.Atoi(rest[:i]); err != nil {
		return false
	}
	return templates.PerPort("HAPROXY_" + rest[i+1:])
}

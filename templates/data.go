package templates

// Global is the data of HAPROXY_HEAD, HAPROXY_HTTP_FRONTEND_HEAD and
// HAPROXY_HTTPS_FRONTEND_HEAD.
type Global struct {
	MaxConn       int    // ≤ 9000 here: the open-files limit (ENVIRONMENT.md)
	HardStopAfter string // e.g. "30s": how long an old worker may live
	MaxReloads    int    // mworker-max-reloads
	SocketPath    string // runtime API socket (level admin, expose-fd listeners)
	StatsBind     string // addr:port of the stats listener
	BindAddr      string // address of the :80/:443 frontends
	HTTPPort      int
	HTTPSPort     int
	HostMapPath   string   // vhost → backend map (exact host match)
	PathMapPath   string   // host/path prefix → backend map
	Certs         []string // crt files of the HTTPS frontend
	// HTTPRules are the rendered HAPROXY_HTTP_FRONTEND_ACL(_WITH_PATH)
	// lines of every vhost, for the :80 frontend to place before its
	// use_backend rules.
	HTTPRules string
}

// HealthCheck is the data a backend's health-check options render from:
// the app's first health check that targets this port.
type HealthCheck struct {
	Protocol   string // HTTP, HTTPS, TCP, ...
	Path       string // HTTP path ("/" when unset)
	IntervalMS int
	TimeoutMS  int
	Fall       int // maxConsecutiveFailures, at least 1
}

// Service is the data of every per-port template: one service port of one
// app, which becomes one frontend and one backend.
type Service struct {
	AppID           string
	PortIndex       int
	Backend         string // stable name: app id + service port, e.g. demo_echo_10000
	ServicePort     int
	BindAddr        string
	BindOptions     string
	Mode            string // tcp or http
	Balance         string
	Sticky          bool
	RedirectToHTTPS bool
	SSLCert         string
	Vhosts          []string
	Path            string
	ProxyPassPath   string
	HealthCheck     *HealthCheck // nil when the app has no check for this port
	Labels          map[string]string
}

// Vhost is the data of HAPROXY_HTTP_FRONTEND_ACL and
// HAPROXY_HTTP_FRONTEND_ACL_WITH_PATH: one host of a service, rendered
// into the :80 frontend. Routing itself is in the map files, so the
// defaults only add a redirect when asked for.
type Vhost struct {
	Service
	Host string
}

package lbsync

// Config is what one sidecar serves and where HAProxy finds its files.
type Config struct {
	// Group is the HAPROXY_GROUP this node serves ("external" by default);
	// "*" serves every app, including apps without a group, as marathon-lb.
	Group string
	// BindAddr is the address frontends bind to ("*" by default); an app's
	// HAPROXY_{n}_BIND_ADDR replaces it for its own frontend.
	BindAddr  string
	HTTPPort  int // :80 frontend for vhosts
	HTTPSPort int // :443 frontend, rendered only when some app has a certificate
	// SlotStep rounds each backend's server slots up to a multiple of it
	// (8 by default), so scaling within the slots needs no reload.
	SlotStep int
	// SocketPath is the runtime API socket (stats socket, level admin).
	SocketPath string
	// MapPath is the vhost map file (host → backend); PathMapPath is the
	// host+path prefix map for HAPROXY_{n}_PATH (MapPath + ".paths" when empty).
	MapPath     string
	PathMapPath string
	// StatsBind is the addr:port of the stats listener.
	StatsBind     string
	MaxConn       int    // ≤ 9000 on hosts with a 20000 open-files limit
	HardStopAfter string // how long old workers may live after a reload
	MaxReloads    int    // mworker-max-reloads
	// DefaultCert, when set, is the first crt of the HTTPS frontend.
	DefaultCert string
}

func (c Config) withDefaults() Config {
	if c.Group == "" {
		c.Group = "external"
	}
	if c.BindAddr == "" {
		c.BindAddr = "*"
	}
	if c.HTTPPort == 0 {
		c.HTTPPort = 80
	}
	if c.HTTPSPort == 0 {
		c.HTTPSPort = 443
	}
	if c.SlotStep <= 0 {
		c.SlotStep = 8
	}
	if c.SocketPath == "" {
		c.SocketPath = "/var/run/haproxy/admin.sock"
	}
	if c.MapPath == "" {
		c.MapPath = "/etc/haproxy/vhosts.map"
	}
	if c.PathMapPath == "" {
		c.PathMapPath = c.MapPath + ".paths"
	}
	if c.StatsBind == "" {
		c.StatsBind = "127.0.0.1:9090"
	}
	if c.MaxConn <= 0 {
		c.MaxConn = 9000
	}
	if c.HardStopAfter == "" {
		c.HardStopAfter = "30s"
	}
	if c.MaxReloads <= 0 {
		c.MaxReloads = 5
	}
	return c
}

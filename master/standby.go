package master

import (
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"
)

// A standby master's API, as Marathon's and Mesos's: clients may talk to
// any master. A standby sends /v2 calls on to the leader, points /master
// and the event stream at it, and answers only what is about itself.

const (
	// headerLeader names the leader on every answer ("http://ip:port").
	headerLeader = "X-Marathon-Leader"
	// headerVia lists the masters a call went through. Marathon uses its
	// own header because Java's URL connection drops "Via".
	headerVia = "X-Marathon-Via"
)

// Marathon's messages, which its clients and operators already know.
const (
	msgNoLeader = "Could not determine the current leader"
	msgLoop     = "Detected proxying loop."
	msgRefused  = "Connection to leader refused."
	msgTimeout  = "Connection to leader timed out."
	msgBadConn  = "Failed to successfully establish a connection to the leader."
)

// route is what a standby does with a call.
type route int

const (
	routeLocal     route = iota // answered by this master
	routeForward                // proxied to the leader, answer passed back
	routeFound                  // 302 to the same URL on the leader
	routeTemporary              // 307 to the same URL on the leader
)

func (r route) String() string {
	switch r {
	case routeLocal:
		return "local"
	case routeForward:
		return "forward"
	case routeFound:
		return "302"
	case routeTemporary:
		return "307"
	}
	return "route(?)"
}

// standbyRoute decides where a standby sends a call. What describes this
// master (liveness, its metrics, who it thinks leads) stays local; the
// event stream is redirected because a standby would have to hold every
// subscriber's connection open for as long as it lives; /master is
// redirected with 307 as a Mesos standby does, keeping the method.
// Reads of /v2/leader and /v2/info are local, anything else on them is
// the leader's business (Marathon's DELETE /v2/leader abdicates).
func standbyRoute(method, path string) route {
	read := method == http.MethodGet || method == http.MethodHead
	switch path {
	case "/ping", "/metrics", "/master/health":
		return routeLocal
	case "/v2/leader", "/v2/info":
		if read {
			return routeLocal
		}
		return routeForward
	case "/v2/events":
		if read {
			return routeFound
		}
		return routeForward
	case "/state.json", // Mesos's old name for /master/state.json
		"/api/v1": // Mesos's operator API, which Mesos redirects too
		return routeTemporary
	}
	switch {
	case path == "/v2" || strings.HasPrefix(path, "/v2/"):
		return routeForward
	case path == "/master" || strings.HasPrefix(path, "/master/"):
		return routeTemporary
	}
	return routeLocal
}

// standby serves the API on whichever master it runs, deciding per call
// whether this master leads. A call that has started locally or been sent
// on finishes there even if leadership moves meanwhile.
type standby struct {
	m     *Master
	local http.Handler
	// transport reaches the leader. It never goes through an environment
	// proxy (the leader is on the cluster network), and gives up dialing
	// soon so a dead leader costs callers seconds, not the default 30.
	transport *http.Transport
	// proxyLog takes ReverseProxy's own complaints (a body cut off
	// midway) into the master's log.
	proxyLog *log.Logger
}

// withStandby wraps the API that a leading master serves itself.
func (m *Master) withStandby(local http.Handler) *standby {
	return &standby{
		m:     m,
		local: local,
		transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     m.cfg.PeerTLS.Clone(), // nil stays nil: the system's roots
			TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		},
		proxyLog: slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
	}
}

func (s *standby) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := standbyRoute(r.Method, r.URL.Path)
	if rt == routeLocal {
		// Whether or not this master leads: /ping and /master/health
		// describe this master itself.
		if l, ok := s.m.LeaderInfo(); ok {
			w.Header().Set(headerLeader, s.m.scheme()+"://"+l.HostPort())
		}
		s.local.ServeHTTP(w, r)
		return
	}
	if s.m.Leading() {
		w.Header().Set(headerLeader, s.m.scheme()+"://"+s.m.selfInfo().HostPort())
		s.local.ServeHTTP(w, r)
		return
	}

	leader, ok := s.m.LeaderInfo()
	if !ok || (leader.Address.IP == "" && leader.Hostname == "") {
		writeMessage(w, http.StatusBadGateway, msgNoLeader)
		return
	}
	addr, self := leader.HostPort(), s.m.selfInfo().HostPort()
	if addr == self {
		// Named leader but not leading (yet, or any more): a moment
		// away from either serving or learning of another leader.
		w.Header().Set("Retry-After", "1")
		writeMessage(w, http.StatusServiceUnavailable, "This master is named leader but is not leading yet; try again shortly.")
		return
	}
	switch rt {
	case routeFound, routeTemporary:
		code := http.StatusFound
		if rt == routeTemporary {
			code = http.StatusTemporaryRedirect
		}
		w.Header().Set(headerLeader, s.m.scheme()+"://"+addr)
		http.Redirect(w, r, s.m.scheme()+"://"+addr+r.URL.RequestURI(), code)
	default:
		s.forward(w, r, addr, self)
	}
}

// forward proxies r to the leader at addr and streams its answer back
// unchanged, X-Marathon-Leader included. The call keeps the Host it was
// sent to, so that the leader's door judges its Origin as this master's
// did (a page served by this master posts to this master).
func (s *standby) forward(w http.ResponseWriter, r *http.Request, addr, self string) {
	if viaNames(r.Header.Values(headerVia), self) {
		writeMessage(w, http.StatusBadGateway, msgLoop)
		return
	}
	target := &url.URL{Scheme: s.m.scheme(), Host: addr}
	hop := "1.1 " + self
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			// Keep the client chain: Rewrite drops inbound X-Forwarded-*.
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			pr.SetXForwarded()
			hops := append(slices.Clone(pr.In.Header.Values(headerVia)), hop)
			pr.Out.Header.Set(headerVia, strings.Join(hops, ", "))
		},
		Transport: s.transport,
		ErrorLog:  s.proxyLog,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil { // else the caller left: not the leader's fault
				s.m.log.Warn("forward to leader failed", "leader", addr,
					"method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeMessage(w, http.StatusBadGateway, proxyErrorMessage(err))
		},
	}
	proxy.ServeHTTP(w, r)
}

// proxyErrorMessage words a failure to reach the leader as Marathon does.
func proxyErrorMessage(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return msgRefused
	case errors.As(err, &ne) && ne.Timeout():
		return msgTimeout
	}
	return msgBadConn
}

// viaNames reports whether an X-Marathon-Via list ("1.1 host:port, ...",
// possibly over several header lines) has a hop received by self.
func viaNames(values []string, self string) bool {
	for _, v := range values {
		for _, hop := range strings.Split(v, ",") {
			if f := strings.Fields(hop); len(f) >= 2 && f[1] == self {
				return true
			}
		}
	}
	return false
}

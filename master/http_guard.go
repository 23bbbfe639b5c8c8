package master

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// The API's door, in front of every call a master receives (standbys
// included, before they answer, redirect or forward):
//
//   - credentials, when configured, on every path but the liveness checks
//     (/ping, /master/health), reads included: the apps' env holds secrets.
//     Marathon's --http_credentials guards "/*", /ping too; Mesos never
//     authenticates /master/health. Liveness says nothing, and health
//     checkers should not need the secret.
//   - mutating calls (POST, PUT, PATCH, DELETE) come from the API's own
//     origin or a listed one, never from a foreign web page in the
//     operator's browser, and their bodies are JSON (a foreign page can
//     send text/plain without a CORS preflight; Marathon answers 415 to
//     anything but application/json). This holds with or without
//     credentials.
//   - CORS headers only for the origins listed (Marathon's
//     --access_control_allow_origin), and none otherwise. Unlike Marathon,
//     which allows only GET, HEAD and OPTIONS cross-origin, a listed
//     origin may make changes too, and "*" is refused.

// realm is Marathon's default --http_credentials_realm. One realm for every
// path: a browser that was asked once for /ui/ answers the challenge of
// /v2/* from its cache instead of asking again.
const realm = "Mesosphere"

// ParseHTTPCredentials splits "user:password" (Marathon's
// --http_credentials): both parts must be non-empty; the password may hold
// colons.
func ParseHTTPCredentials(s string) (user, pass string, err error) {
	user, pass, ok := strings.Cut(s, ":")
	if !ok || user == "" || pass == "" {
		return "", "", fmt.Errorf("HTTP credentials must be user:password, both non-empty")
	}
	return user, pass, nil
}

// ParseOrigin checks one allowed origin ("https://ui.example.com:8443") and
// returns it in the form a browser sends: lower case, no default port, no
// trailing slash.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("origin %q: want scheme://host[:port], as a browser sends it in Origin", s)
	}
	host := strings.ToLower(u.Host)
	if def := defaultPort(u.Scheme); strings.HasSuffix(host, ":"+def) {
		host = strings.TrimSuffix(host, ":"+def)
	}
	return u.Scheme + "://" + host, nil
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// httpGuard holds what the door checks against. It is built once from
// the config.
type httpGuard struct {
	user, pass string          // both empty: no credentials configured
	origins    map[string]bool // allowed cross origins, as ParseOrigin returns them
	log        *slog.Logger
	refused    *prometheus.CounterVec // by reason
}

// Refusal reasons, the label of atoll_master_http_refused_total.
const (
	refuseUnauthorized = "unauthorized"
	refuseCrossOrigin  = "cross_origin"
	refuseMediaType    = "media_type"
)

func newHTTPGuard(cfg Config, log *slog.Logger, refused *prometheus.CounterVec) (*httpGuard, error) {
	g := &httpGuard{origins: map[string]bool{}, log: log, refused: refused}
	for _, reason := range []string{refuseUnauthorized, refuseCrossOrigin, refuseMediaType} {
		refused.WithLabelValues(reason) // shown at 0 before the first refusal
	}
	if cfg.HTTPCredentials != "" {
		var err error
		if g.user, g.pass, err = ParseHTTPCredentials(cfg.HTTPCredentials); err != nil {
			return nil, err
		}
	}
	for _, o := range cfg.HTTPCORSOrigins {
		if strings.TrimSpace(o) == "*" {
			return nil, fmt.Errorf("origin \"*\": list the origins one by one; any origin would let every web page call the API")
		}
		norm, err := ParseOrigin(o)
		if err != nil {
			return nil, err
		}
		g.origins[norm] = true
	}
	return g, nil
}

// open reports whether path is a liveness check, answered to anyone.
func open(path string) bool { return path == "/ping" || path == "/master/health" }

func mutating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// refusal is why a call may not pass; the zero value lets it through.
type refusal struct {
	status  int
	reason  string
	message string
	// challenge: a 401 that asks for credentials.
	challenge bool
}

// check decides on a call from its method, path and headers alone.
func (g *httpGuard) check(r *http.Request) refusal {
	if open(r.URL.Path) {
		return refusal{}
	}
	if g.user != "" {
		u, p, ok := r.BasicAuth()
		// Compare both halves every time: no early exit to time.
		okUser := subtle.ConstantTimeCompare([]byte(u), []byte(g.user))
		okPass := subtle.ConstantTimeCompare([]byte(p), []byte(g.pass))
		if !ok || okUser&okPass != 1 {
			return refusal{status: http.StatusUnauthorized, reason: refuseUnauthorized,
				message: "Invalid username or password.", challenge: true}
		}
	}
	if !mutating(r.Method) {
		return refusal{}
	}
	if why := g.crossOrigin(r); why != "" {
		return refusal{status: http.StatusForbidden, reason: refuseCrossOrigin, message: why}
	}
	if r.ContentLength != 0 { // a body, of known length or chunked
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			// Marathon's (Jersey's) answer, word for word.
			return refusal{status: http.StatusUnsupportedMediaType, reason: refuseMediaType, message: "Unsupported Media Type"}
		}
	}
	return refusal{}
}

// crossOrigin says why a mutating call comes from a foreign web page, ""
// when it does not. Browsers send Origin on every POST, PUT, PATCH and
// DELETE; tools such as curl send neither header and pass.
func (g *httpGuard) crossOrigin(r *http.Request) string {
	origin := r.Header.Get("Origin")
	if origin != "" {
		if g.allowed(origin) || sameHost(origin, r.Host) {
			return ""
		}
		return fmt.Sprintf("Cross-origin request refused: origin %q is not this API's (%s) and not allowed by --http-cors-origin", origin, r.Host)
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "cross-site", "same-site":
		return fmt.Sprintf("Cross-origin request refused: Sec-Fetch-Site is %s", site)
	}
	return ""
}

// allowed reports whether origin is listed.
func (g *httpGuard) allowed(origin string) bool {
	norm, err := ParseOrigin(origin)
	return err == nil && g.origins[norm]
}

// sameHost reports whether a browser's Origin names the host:port the
// call was sent to. The scheme does not count: one port speaks one of them,
// and a proxy in front may end TLS. Browsers leave a default port out of
// Origin; a client may name it in Host.
func sameHost(origin, host string) bool {
	norm, err := ParseOrigin(origin)
	if err != nil {
		return false // "null" (sandboxed frames, file:), or garbage
	}
	scheme, oh, _ := strings.Cut(norm, "://")
	h := strings.ToLower(host)
	return h == oh || h == oh+":"+defaultPort(scheme)
}

// wrap puts the door in front of next.
func (g *httpGuard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		listed := origin != "" && g.allowed(origin)
		if listed {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			// A preflight carries no credentials: answer it here.
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
				h.Set("Access-Control-Allow-Headers", allowHeaders(r.Header.Values("Access-Control-Request-Headers")))
				h.Set("Access-Control-Max-Age", "86400")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		ref := g.check(r)
		if ref.status == 0 {
			next.ServeHTTP(w, r)
			return
		}
		g.refused.WithLabelValues(ref.reason).Inc()
		level := slog.LevelWarn
		if ref.reason == refuseUnauthorized && r.Header.Get("Authorization") == "" {
			// The challenge every browser gets before it sends them.
			level = slog.LevelInfo
		}
		g.log.Log(r.Context(), level, "api call refused", "reason", ref.reason, "method", r.Method,
			"path", r.URL.Path, "remote", r.RemoteAddr, "origin", origin,
			"content_type", r.Header.Get("Content-Type"))
		if ref.challenge {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
		}
		writeMessage(w, ref.status, ref.message)
	})
}

// allowHeaders is the preflight's Access-Control-Allow-Headers: the
// headers the page asked for (as Marathon does), cleaned up.
func allowHeaders(requested []string) string {
	seen := map[string]bool{}
	var out []string
	for _, v := range requested {
		for _, name := range strings.Split(v, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			if name != "" && !seen[name] && validHeaderName(name) {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func validHeaderName(s string) bool {
	for _, c := range s {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

package imagestore

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"
)

// registryTransport speaks to registries: HTTPS with verified certificates,
// except that registries allowed plain HTTP (loopback, --insecure-registries)
// may also be reached over HTTP or HTTPS with any certificate, as dockerd
// treats insecure registries. go-containerregistry falls back to HTTP on
// its own for loopback and private (RFC 1918) addresses; this transport
// is what keeps that fallback to the registries the operator allowed.
type registryTransport struct {
	secure, insecure http.RoundTripper
	allowed          map[string]bool
}

func newRegistryTransport(base *http.Transport, insecureRegistries []string) *registryTransport {
	if base == nil {
		base = &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   10 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			// A registry that takes a connection and never answers
			// must not hang a task's start forever.
			ResponseHeaderTimeout: 30 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   4,
		}
	}
	insecure := base.Clone()
	insecure.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // #nosec: only for registries the operator listed as insecure
	allowed := map[string]bool{}
	for _, r := range insecureRegistries {
		allowed[r] = true
	}
	return &registryTransport{secure: base, insecure: insecure, allowed: allowed}
}

func (t *registryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !plainHTTPAllowed(req.URL.Host, t.allowed) {
		if req.URL.Scheme != "https" {
			return nil, fmt.Errorf("registry %s: plain HTTP refused (not loopback and not in --insecure-registries)", req.URL.Host)
		}
		return t.secure.RoundTrip(req)
	}
	return t.insecure.RoundTrip(req)
}

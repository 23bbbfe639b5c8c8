package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// httpClient serves every HTTP and HTTPS check of the agent.
var httpClient = &http.Client{
	Transport: &http.Transport{
		// Straight to the task: a proxy from the agent's environment
		// would probe the proxy, not the task.
		Proxy:       nil,
		DialContext: (&net.Dialer{}).DialContext,
		// A fresh connection per check, as Marathon and Mesos make:
		// a pooled one would hide a task that stopped accepting.
		DisableKeepAlives: true,
		// Tasks serve self-signed certificates; Marathon and Mesos do
		// not verify them either. The check is about liveness, not
		// identity.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	},
	// A redirect is an answer (3xx counts as healthy); following it would
	// probe something else.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// probeHTTP GETs scheme://host:port/path.
func probeHTTP(ctx context.Context, scheme, host string, port int, path string, ignore1xx bool, timeout time.Duration) error {
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
	what := "GET " + url
	pctx := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return timeoutCause(pctx, ctx, what, timeout, err)
	}
	// The verdict is in the status line; the body is drained (bounded)
	// only so the server sees a complete exchange.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return httpVerdict(what, resp.StatusCode, resp.Status, ignore1xx)
}

// httpVerdict is Marathon's reading of a status code: 200-399 healthy,
// 100-199 discarded with ignoreHttp1xx, anything else a failure.
func httpVerdict(what string, code int, status string, ignore1xx bool) error {
	switch {
	case code >= 200 && code < 400:
		return nil
	case code >= 100 && code < 200 && ignore1xx:
		return ErrIgnored
	}
	return fmt.Errorf("%s: status %s", what, status)
}

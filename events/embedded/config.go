package embedded

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/atollhq/atoll/internal/natsauth"
)

// DefaultClusterName is the cluster name when routes are set and no name
// is given: every node of one cluster must use the same.
const DefaultClusterName = "atoll"

// Config says how to run one NATS server. With ClusterListen empty it is
// standalone; with it set, the server accepts routes there and dials
// Routes, the nats-server way (a node may list itself: the server skips
// its own route).
type Config struct {
	// Listen is the clients' "host:port"; port 0 picks one.
	Listen string
	// Name is the server's name, unique within a cluster (default: a
	// generated id).
	Name string
	// ClusterName names the cluster (default DefaultClusterName).
	ClusterName string
	// ClusterListen is the routes' "host:port"; empty: no cluster.
	ClusterListen string
	// Routes are the peers' route URLs, "nats://host:6222".
	Routes []string
	// Trust is the operator and accounts whose credentials the server
	// accepts. It is required: atoll's NATS never runs without
	// authentication.
	Trust *natsauth.ServerTrust
	// TLS, if set, is the clients' TLS; with ClientCAs set, clients need
	// a certificate of that CA (mTLS) and so do routes between the
	// servers of a cluster, so a host that reaches the route port cannot
	// join the cluster without one.
	TLS *tls.Config
	// Log, if set, gets the server's notices, warnings and errors (a
	// refused connection, a permission violation).
	Log *slog.Logger
}

// ParseRoutes splits a comma-separated route list ("nats://a:6222,nats://b:6222").
func ParseRoutes(s string) []string {
	var out []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// options turns cfg into the server's options, checking every address.
func (c Config) options() (*server.Options, error) {
	host, port, err := splitHostPort(c.Listen, "nats listen address")
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: c.Name,
		Host:       host,
		Port:       port,
		NoLog:      true,
		NoSigs:     true,
		// A cluster snapshot can be large; events are small.
		MaxPayload: 8 << 20,
	}
	if c.Trust == nil {
		return nil, errors.New("nats: no trust configured (operator and account JWTs): authentication is always on")
	}
	if err := c.Trust.Apply(opts); err != nil {
		return nil, err
	}
	if c.TLS != nil {
		opts.TLSConfig = c.TLS
		opts.TLS = true
		opts.TLSVerify = c.TLS.ClientAuth == tls.RequireAndVerifyClientCert
		opts.TLSTimeout = 5
	}
	if c.ClusterListen == "" {
		if len(c.Routes) > 0 {
			return nil, fmt.Errorf("nats routes %v need a cluster listen address", c.Routes)
		}
		return opts, nil
	}
	chost, cport, err := splitHostPort(c.ClusterListen, "nats cluster listen address")
	if err != nil {
		return nil, err
	}
	name := c.ClusterName
	if name == "" {
		name = DefaultClusterName
	}
	opts.Cluster = server.ClusterOpts{Name: name, Host: chost, Port: cport}
	if c.TLS != nil && c.TLS.ClientCAs != nil {
		// Routes verify each other against the same CA, both ways.
		rt := c.TLS.Clone()
		rt.ClientAuth = tls.RequireAndVerifyClientCert
		rt.RootCAs = c.TLS.ClientCAs
		opts.Cluster.TLSConfig = rt
		opts.Cluster.TLSTimeout = 5
	}
	for _, r := range c.Routes {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" || (u.Scheme != "nats" && u.Scheme != "nats-route") {
			return nil, fmt.Errorf("nats route %q: want nats://host:port", r)
		}
		opts.Routes = append(opts.Routes, u)
	}
	return opts, nil
}

// splitHostPort parses "host:port"; port 0 becomes the server's "pick one".
func splitHostPort(addr, what string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", what, addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%s %q: bad port", what, addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

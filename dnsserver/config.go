// Package dnsserver answers Mesos-DNS-compatible names for the cluster
// (task.framework.domain and friends) from an events follower, and forwards
// every other name to the node's upstream resolvers. The record set is an
// immutable zone swapped atomically on every event: lookups take no lock.
//
// Files: config.go (this), names.go (RFC 1123 labels, Mesos-DNS naming),
// records.go (compact record data), cowmap.go (the persistent map under
// the zone), zone*.go (records built from events.State, incremental per
// event), packed.go (pre-packed answers), wire.go (the query parser of the
// fast path), handler.go (answering one packet), server*.go and listen.go
// (UDP/TCP serving), counters.go (query metrics), forward.go/cache.go/acl.go
// (forwarding), http*.go (Mesos-DNS HTTP API), metrics.go.
package dnsserver

import (
	"net/netip"
	"time"
)

// Config is what a DNS sidecar needs. Zero values take the defaults below.
type Config struct {
	// Addr is where UDP and TCP are served. Default ":53".
	Addr string
	// Domain is the cluster's zone. Default "mesos".
	Domain string
	// Framework is the framework label in task names. Default "marathon".
	Framework string
	// TTL of the cluster's records, in seconds. Default 5.
	TTL uint32
	// Resolvers are upstream "host:port" servers for names outside Domain.
	Resolvers []string
	// ForwardTimeout is the per-try timeout of a forwarded query. Default 2s.
	ForwardTimeout time.Duration
	// RecursionCIDRs are the clients whose outside names are forwarded;
	// others get REFUSED. Default: loopback and private ranges.
	RecursionCIDRs []netip.Prefix
	// UDPSockets is how many SO_REUSEPORT UDP sockets to serve on.
	// Default: GOMAXPROCS.
	UDPSockets int
}

// Defaults for Config.
const (
	DefaultDomain         = "mesos"
	DefaultFramework      = "marathon"
	DefaultTTL            = 5
	DefaultForwardTimeout = 2 * time.Second
)

// DefaultRecursionCIDRs are loopback and the private ranges.
func DefaultRecursionCIDRs() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "198.18.0.0/15", "fc00::/7", "fe80::/10"} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = ":53"
	}
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	if c.Framework == "" {
		c.Framework = DefaultFramework
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.ForwardTimeout <= 0 {
		c.ForwardTimeout = DefaultForwardTimeout
	}
	if c.RecursionCIDRs == nil {
		c.RecursionCIDRs = DefaultRecursionCIDRs()
	}
	return c
}

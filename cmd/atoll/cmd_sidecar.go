package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	"github.com/atollhq/atoll/dnsserver"
)

// runSidecar runs what every node runs beside its agent: the DNS server
// and HAProxy kept in line with the cluster, both fed by one follower (one
// NATS connection, one snapshot, one copy of the state); either half can
// be switched off (--dns "", --lb=false).
func runSidecar(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll sidecar", flag.ContinueOnError)
	var o sidecarOptions
	o.register(fs)
	lbOn := fs.Bool("lb", true, "run HAProxy kept in line with the cluster (needs haproxy)")
	// The load balancer's /metrics has a listener of its own
	// (--metrics-addr): the DNS HTTP API's handler is built inside
	// dnsserver and serves its registry only.
	var lb lbOptions
	lb.register(fs)
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	if !*lbOn {
		return o.run(ctx, fs.Name(), stderr)
	}
	if lb.sse != "" {
		fmt.Fprintf(stderr, "%s: --sse is for `atoll lb`; the sidecar follows NATS\n", fs.Name())
		return 2
	}
	if _, err := exec.LookPath(lb.bin); err != nil {
		fmt.Fprintf(stderr, "%s: %s not found: install HAProxy or run with --lb=false\n", fs.Name(), lb.bin)
		return 2
	}
	parts := sidecarParts{lb: &lb}
	if o.dns.addr != "" { // --dns "" runs the load balancer alone
		cfg, err := o.dns.config()
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
			return 2
		}
		parts.dns, parts.dnsHTTP, parts.pprof = &cfg, o.dns.httpAddr, o.dns.pprof
	}
	if err := serveNodeSidecar(ctx, o.nats, parts, newLogger(stderr, o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 1
	}
	return 0
}

// runDNS runs the DNS server alone, with the same flags as the sidecar's
// DNS half.
func runDNS(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll dns", flag.ContinueOnError)
	var o sidecarOptions
	o.register(fs)
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	return o.run(ctx, fs.Name(), stderr)
}

type sidecarOptions struct {
	nats     natsFlags
	dns      dnsFlags
	logLevel string
}

func (o *sidecarOptions) register(fs *flag.FlagSet) {
	o.nats.register(fs)
	o.dns.register(fs, ":53", "http")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
}

func (o *sidecarOptions) run(ctx context.Context, name string, stderr io.Writer) int {
	if o.dns.addr == "" {
		fmt.Fprintf(stderr, "%s: --dns is empty: nothing to run\n", name)
		return 2
	}
	cfg, err := o.dns.config()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	parts := sidecarParts{dns: &cfg, dnsHTTP: o.dns.httpAddr, pprof: o.dns.pprof}
	if err := serveNodeSidecar(ctx, o.nats, parts, newLogger(stderr, o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// dnsFlags are the DNS server's flags, shared by `atoll sidecar`, `atoll
// dns` and `atoll dev` (which names its HTTP flag --dns-http, its --http
// being the master's).
type dnsFlags struct {
	addr, httpAddr    string
	domain, framework string
	ttl               uint
	resolvers         string
	forwardTimeout    time.Duration
	recursionCIDRs    string
	sockets           int
	pprof             bool
}

func (f *dnsFlags) register(fs *flag.FlagSet, defaultAddr, httpFlag string) {
	fs.StringVar(&f.addr, "dns", defaultAddr, "address the DNS server answers on, UDP and TCP")
	fs.StringVar(&f.httpAddr, httpFlag, "127.0.0.1:8123", `address of the Mesos-DNS-style HTTP API and /metrics ("" disables)`)
	fs.StringVar(&f.domain, "domain", dnsserver.DefaultDomain, "the cluster's DNS domain")
	fs.StringVar(&f.framework, "framework-name", dnsserver.DefaultFramework, "framework label in task names (<task>.<framework>.<domain>)")
	fs.UintVar(&f.ttl, "ttl", dnsserver.DefaultTTL, "TTL of the cluster's records, in seconds")
	fs.StringVar(&f.resolvers, "resolvers", "", "upstream resolvers for other names, comma separated ip[:port] (default: the nameservers in /etc/resolv.conf other than this server)")
	fs.DurationVar(&f.forwardTimeout, "forward-timeout", dnsserver.DefaultForwardTimeout, "per-try timeout of a forwarded query before the next resolver")
	fs.StringVar(&f.recursionCIDRs, "recursion-cidrs", prefixList(dnsserver.DefaultRecursionCIDRs()), `clients whose other names are forwarded, comma separated; others get REFUSED ("" forwards for nobody)`)
	fs.IntVar(&f.sockets, "dns-sockets", 0, "UDP sockets (SO_REUSEPORT) to serve on (default GOMAXPROCS)")
	fs.BoolVar(&f.pprof, "pprof", false, "serve Go's /debug/pprof/ profiles on the HTTP API too (it has no credentials: keep it on loopback)")
}

// config turns the flags into the server's Config; resolvers default to
// the node's resolv.conf.
func (f *dnsFlags) config() (dnsserver.Config, error) {
	cfg := dnsserver.Config{
		Addr: f.addr, Domain: strings.Trim(strings.ToLower(f.domain), "."), Framework: f.framework,
		ForwardTimeout: f.forwardTimeout, UDPSockets: f.sockets,
	}
	if _, _, err := net.SplitHostPort(f.addr); err != nil {
		return cfg, fmt.Errorf("--dns %q: %w", f.addr, err)
	}
	if cfg.Domain == "" {
		return cfg, fmt.Errorf("--domain is empty")
	}
	if f.ttl == 0 || f.ttl > 1<<31-1 {
		return cfg, fmt.Errorf("--ttl %d: must be between 1 and %d", f.ttl, 1<<31-1)
	}
	cfg.TTL = uint32(f.ttl)
	if f.forwardTimeout <= 0 {
		return cfg, fmt.Errorf("--forward-timeout %s: must be positive", f.forwardTimeout)
	}
	if f.sockets < 0 {
		return cfg, fmt.Errorf("--dns-sockets %d: must not be negative", f.sockets)
	}
	cidrs, err := dnsserver.ParseCIDRs(f.recursionCIDRs)
	if err != nil {
		return cfg, fmt.Errorf("--recursion-cidrs: %w", err)
	}
	cfg.RecursionCIDRs = cidrs
	if strings.TrimSpace(f.resolvers) != "" {
		cfg.Resolvers, err = parseResolvers(f.resolvers)
	} else {
		cfg.Resolvers, err = dnsserver.ResolversFromResolvConf("/etc/resolv.conf", []string{f.addr})
	}
	if err != nil {
		return cfg, fmt.Errorf("--resolvers: %w", err)
	}
	return cfg, nil
}

// parseResolvers reads "ip[:port],..." into "host:port" strings; port 53
// when none is given.
func parseResolvers(s string) ([]string, error) {
	var out []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("%q: empty element", s)
		}
		if a, err := netip.ParseAddr(strings.Trim(item, "[]")); err == nil {
			out = append(out, net.JoinHostPort(a.String(), "53"))
			continue
		}
		host, port, err := net.SplitHostPort(item)
		if err != nil {
			return nil, fmt.Errorf("%q: want ip or ip:port: %w", item, err)
		}
		if _, err := netip.ParseAddr(host); err != nil {
			// A name would need a resolver to find the resolver.
			return nil, fmt.Errorf("%q: the host must be an IP address", item)
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out, nil
}

func prefixList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

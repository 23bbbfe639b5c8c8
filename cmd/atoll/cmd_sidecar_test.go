package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/dnsserver"
)

func parseDNSFlags(t *testing.T, args ...string) (dnsFlags, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var f dnsFlags
	f.register(fs, ":53", "http")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	return f, nil
}

func TestDNSFlagsConfig(t *testing.T) {
	f, err := parseDNSFlags(t, "--dns", "127.0.0.1:8053", "--domain", "Cluster.", "--framework-name", "mara",
		"--ttl", "30", "--resolvers", "192.0.2.1, 192.0.2.2:5353,[2001:db8::1]:53,2001:db8::2",
		"--forward-timeout", "300ms", "--recursion-cidrs", "127.0.0.1/32,10.0.0.0/8", "--dns-sockets", "2")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:8053" || cfg.Domain != "cluster" || cfg.Framework != "mara" || cfg.TTL != 30 ||
		cfg.ForwardTimeout != 300*time.Millisecond || cfg.UDPSockets != 2 {
		t.Errorf("config %+v", cfg)
	}
	if want := []string{"192.0.2.1:53", "192.0.2.2:5353", "[2001:db8::1]:53", "[2001:db8::2]:53"}; !slices.Equal(cfg.Resolvers, want) {
		t.Errorf("resolvers %v, want %v", cfg.Resolvers, want)
	}
	if len(cfg.RecursionCIDRs) != 2 || cfg.RecursionCIDRs[1].String() != "10.0.0.0/8" {
		t.Errorf("recursion CIDRs %v", cfg.RecursionCIDRs)
	}
}

func TestDNSFlagsDefaults(t *testing.T) {
	f, err := parseDNSFlags(t, "--resolvers", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":53" || cfg.Domain != "mesos" || cfg.Framework != "marathon" || cfg.TTL != 5 || cfg.ForwardTimeout != 2*time.Second {
		t.Errorf("defaults %+v", cfg)
	}
	if !slices.Equal(cfg.RecursionCIDRs, dnsserver.DefaultRecursionCIDRs()) {
		t.Errorf("recursion CIDRs %v, want the defaults", cfg.RecursionCIDRs)
	}
	if f.httpAddr != "127.0.0.1:8123" {
		t.Errorf("HTTP API on %q, want Mesos-DNS's 127.0.0.1:8123", f.httpAddr)
	}
}

func TestDNSFlagsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dns", "nope"}, "--dns"},
		{[]string{"--ttl", "0"}, "--ttl"},
		{[]string{"--domain", "."}, "--domain"},
		{[]string{"--forward-timeout", "0s"}, "--forward-timeout"},
		{[]string{"--recursion-cidrs", "10.0.0.0/8,,"}, "--recursion-cidrs"},
		{[]string{"--resolvers", "dns.example:53"}, "IP address"},
		{[]string{"--resolvers", "192.0.2.1,"}, "empty"},
		{[]string{"--dns-sockets", "-1"}, "--dns-sockets"},
	} {
		f, err := parseDNSFlags(t, append([]string{"--resolvers", "192.0.2.1"}, tc.args...)...)
		if err == nil {
			_, err = f.config()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one about %s", tc.args, err, tc.want)
		}
	}
}

// Without --resolvers, the nameservers of /etc/resolv.conf are used, minus
// the server itself; the file is the machine's, so only the outcome's
// consistency with ResolversFromResolvConf is checked.
func TestDNSFlagsResolvConf(t *testing.T) {
	f, err := parseDNSFlags(t, "--dns", "127.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	want, wantErr := dnsserver.ResolversFromResolvConf("/etc/resolv.conf", []string{"127.0.0.1:53"})
	if (err != nil) != (wantErr != nil) || !slices.Equal(cfg.Resolvers, want) {
		t.Fatalf("resolvers %v (%v), want %v (%v)", cfg.Resolvers, err, want, wantErr)
	}
}

func TestSidecarCommandsRejectBadFlags(t *testing.T) {
	for _, c := range []struct {
		run   func(context.Context, []string, io.Writer, io.Writer) int
		extra []string // with nothing else to run, the sidecar's LB half is off
	}{{runSidecar, []string{"--lb=false"}}, {runDNS, nil}} {
		run := c.run
		var stderr bytes.Buffer
		if code := run(context.Background(), []string{"--ttl", "0", "--resolvers", "192.0.2.1"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "--ttl") {
			t.Errorf("--ttl 0: exit %d, stderr %q; want 2 and a word about --ttl", code, stderr.String())
		}
		stderr.Reset()
		if code := run(context.Background(), append([]string{"--dns", ""}, c.extra...), io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "nothing to run") {
			t.Errorf("--dns \"\" %v: exit %d, stderr %q; want 2, nothing to run", c.extra, code, stderr.String())
		}
	}
}

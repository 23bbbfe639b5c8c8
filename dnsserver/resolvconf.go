package dnsserver

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// ResolversFromResolvConf returns the nameservers of a resolv.conf file as
// "ip:53" / "[ipv6]:53", in file order, minus the ones this sidecar itself
// serves on: nodes point resolv.conf at the sidecar, and forwarding to
// ourselves would loop until every try timed out.
//
// self are the sidecar's listen addresses ("host:port"). A specific address
// excludes that address when its port is 53 (resolv.conf has no ports). An
// unspecified host (":53", "0.0.0.0:53", "[::]:53") serves every local
// address, so it excludes the loopback addresses (127.0.0.0/8, ::1); Go
// listens dual-stack on any wildcard, hence both families either way. A
// node's own non-loopback addresses are not detected.
//
// Lines that are not "nameserver <IP>" are ignored, as the C resolver
// ignores them. A missing or unreadable file is an error naming the path;
// so is a file with no usable nameserver left, since forwarding then cannot
// work and the caller should know why.
func ResolversFromResolvConf(path string, self []string) ([]string, error) {
	ex, err := parseSelfListen(self)
	if err != nil {
		return nil, fmt.Errorf("resolvers from %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("resolvers from %s: %w", path, err)
	}
	defer f.Close()

	var out []string
	skipped := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue
		}
		if ex.excludes(a) {
			skipped++
			continue
		}
		out = append(out, net.JoinHostPort(a.String(), "53"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("resolvers from %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("resolvers from %s: no nameserver other than this server (%d excluded as our own listen addresses %v)", path, skipped, self)
	}
	return out, nil
}

// selfListen are the port-53 addresses the sidecar answers on.
type selfListen struct {
	addrs    []netip.Addr
	loopback bool // a wildcard listen on port 53
}

func parseSelfListen(self []string) (selfListen, error) {
	var s selfListen
	for _, hp := range self {
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			return s, fmt.Errorf("listen address %q: %w", hp, err)
		}
		if port != "53" {
			continue // resolv.conf can only name port 53
		}
		if host == "" {
			s.loopback = true
			continue
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return s, fmt.Errorf("listen address %q: host must be an IP address: %w", hp, err)
		}
		if a.IsUnspecified() {
			s.loopback = true
			continue
		}
		s.addrs = append(s.addrs, a.Unmap().WithZone(""))
	}
	return s, nil
}

// excludes reports whether nameserver a is this sidecar.
func (s selfListen) excludes(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if s.loopback && a.IsLoopback() {
		return true
	}
	for _, x := range s.addrs {
		if x == a {
			return true
		}
	}
	return false
}

package dnsserver

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseCIDRs parses a comma-separated list of prefixes ("10.0.0.0/8,
// fd00::/8, 192.0.2.7") as given to --recursion-cidrs. A bare address
// becomes a single-address prefix (/32 or /128). Prefixes are masked, and
// IPv4-mapped IPv6 prefixes (::ffff:10.0.0.0/104) become their IPv4 form so
// that they match the unmapped client addresses AllowedRecursion compares.
//
// A blank string yields an empty, non-nil slice: nobody may recurse. (A nil
// Config.RecursionCIDRs would mean the defaults instead.) Empty elements
// ("a,,b") are errors rather than skipped: this list decides who may use the
// node as a resolver, so a typo must not pass silently.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	out := []netip.Prefix{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("recursion CIDRs %q: element %d is empty", s, i+1)
		}
		p, err := parsePrefixOrAddr(item)
		if err != nil {
			return nil, fmt.Errorf("recursion CIDRs %q: element %d: %w", s, i+1, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// parsePrefixOrAddr parses one prefix or bare address.
func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix: %w", s, err)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR prefix: %w", s, err)
		}
		if a.Zone() != "" {
			// A zone would make the prefix match nothing (Prefix.Contains
			// rejects zoned addresses); say so instead.
			return netip.Prefix{}, fmt.Errorf("%q: zoned addresses are not allowed", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	// ::ffff:a.b.c.d/n with n >= 96 names IPv4 clients; keep it in the
	// IPv4 form clients are compared in.
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// AllowedRecursion reports whether a client at addr may have names outside
// the domain forwarded. IPv4 clients reaching a dual-stack socket appear as
// ::ffff:a.b.c.d and are unmapped first; a link-local client's zone is
// dropped, since prefixes carry none.
func AllowedRecursion(cidrs []netip.Prefix, addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range cidrs {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

package main

import (
	"net/netip"
	"strings"
	"testing"
)

// The lab may use 198.18.0.0/15 only, and each address once.
func TestAddressesStayInBenchmarkRange(t *testing.T) {
	lab := netip.MustParsePrefix("198.18.0.0/15")
	seen := map[string]string{}
	check := func(who, ip string) {
		a, err := netip.ParseAddr(ip)
		if err != nil || !lab.Contains(a) {
			t.Errorf("%s: %s outside %s", who, ip, lab)
		}
		if other, dup := seen[ip]; dup {
			t.Errorf("%s and %s share %s", who, other, ip)
		}
		seen[ip] = who
	}
	for _, h := range allHosts() {
		check(h.NS(), h.IP())
	}
	for _, r := range regions {
		check("router "+r.RouterDev(), r.Gateway())
	}
	for _, s := range []string{zkConnect(), natsRoutes(), natsURL(regions[1]), masterURL(regions[2])} {
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '/' }) {
			if host, _, ok := strings.Cut(f, ":"); ok && strings.Count(f, ".") == 3 {
				if a, err := netip.ParseAddr(host); err != nil || !lab.Contains(a) {
					t.Errorf("%q: %s outside %s", s, host, lab)
				}
			}
		}
	}
}

// Namespaces carry the prefix down removes, and link names fit IFNAMSIZ.
func TestNamesFitTheKernel(t *testing.T) {
	for _, h := range allHosts() {
		if !strings.HasPrefix(h.NS(), nsPrefix) || !strings.HasPrefix(h.Region.SwitchNS(), nsPrefix) {
			t.Errorf("%s: namespace without prefix %q", h.Name(), nsPrefix)
		}
		if dev := "to-" + h.Short; len(dev) > 15 {
			t.Errorf("link %s longer than 15 bytes", dev)
		}
	}
	if !strings.HasPrefix(routerNS, nsPrefix) {
		t.Errorf("router namespace %s without prefix", routerNS)
	}
}

func TestProcsAndNames(t *testing.T) {
	if n := len(procs()); n != 18 {
		t.Errorf("%d processes, want 18 (6 per region)", n)
	}
	for _, p := range procs() {
		got, err := procByName(p.Name)
		if err != nil || got != p {
			t.Errorf("procByName(%s) = %v, %v", p.Name, got, err)
		}
	}
	if p := procIn(regions[1], "agent2"); p.Host.IP() != "198.18.2.22" || p.Role != "agent" {
		t.Errorf("r2 agent2 = %+v", p)
	}
	for _, s := range []string{"2", "r2", "frankfurt"} {
		if r, err := regionByName(s); err != nil || r.N != 2 {
			t.Errorf("regionByName(%s) = %v, %v", s, r, err)
		}
	}
	if h, err := hostByName("atoll-r3-s"); err != nil || h.IP() != "198.18.3.30" {
		t.Errorf("hostByName = %v, %v", h, err)
	}
	if _, err := regionByName("mars"); err == nil {
		t.Error("regionByName(mars): no error")
	}
}

// The partition cuts the master node from both other master nodes, in
// both directions, and from nothing else.
func TestPartitionRules(t *testing.T) {
	rules := partitionRules(regions[0])
	if len(rules) != 4 {
		t.Fatalf("%d rules, want 4", len(rules))
	}
	want := map[string]bool{
		"INPUT -s 198.18.2.10 -j DROP": true, "OUTPUT -d 198.18.2.10 -j DROP": true,
		"INPUT -s 198.18.3.10 -j DROP": true, "OUTPUT -d 198.18.3.10 -j DROP": true,
	}
	for _, r := range rules {
		if !want[strings.Join(r, " ")] {
			t.Errorf("unexpected rule %v", r)
		}
	}
}

package dnsserver

import (
	"net/netip"
	"strings"
	"testing"
)

func TestACLParseCIDRs(t *testing.T) {
	tests := []struct {
		in      string
		want    []string // netip.Prefix strings
		wantErr string   // substring of the error
	}{
		{in: "10.0.0.0/8", want: []string{"10.0.0.0/8"}},
		{in: " 10.0.0.0/8 , 192.168.0.0/16,fd00::/8 ", want: []string{"10.0.0.0/8", "192.168.0.0/16", "fd00::/8"}},
		{in: "192.0.2.7", want: []string{"192.0.2.7/32"}},
		{in: "2001:db8::1", want: []string{"2001:db8::1/128"}},
		{in: "10.1.2.3/8", want: []string{"10.0.0.0/8"}},            // masked
		{in: "::ffff:10.0.0.0/104", want: []string{"10.0.0.0/8"}},   // 4-in-6 unmapped
		{in: "::ffff:192.0.2.7", want: []string{"192.0.2.7/32"}},    // bare 4-in-6
		{in: "", want: []string{}},                                  // nobody
		{in: "  ", want: []string{}},                                // nobody
		{in: "10.0.0.0/8,,fd00::/8", wantErr: "element 2 is empty"}, // typo
		{in: "10.0.0.0/8,", wantErr: "element 2 is empty"},          // trailing comma
		{in: "10.0.0.0/33", wantErr: `element 1: "10.0.0.0/33" is not a CIDR prefix`},
		{in: "example.com", wantErr: `"example.com" is neither an IP address nor a CIDR prefix`},
		{in: "10.0.0.0/8,300.1.1.1", wantErr: "element 2"},
		{in: "fe80::1%eth0", wantErr: "zoned addresses are not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCIDRs(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseCIDRs(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCIDRs(%q): %v", tt.in, err)
			}
			if got == nil {
				t.Fatalf("ParseCIDRs(%q) = nil, want a non-nil slice (nil means the defaults)", tt.in)
			}
			var gs []string
			for _, p := range got {
				gs = append(gs, p.String())
			}
			if strings.Join(gs, ",") != strings.Join(tt.want, ",") {
				t.Errorf("ParseCIDRs(%q) = %v, want %v", tt.in, gs, tt.want)
			}
		})
	}
}

func TestACLAllowedRecursion(t *testing.T) {
	defaults := DefaultRecursionCIDRs()
	custom, err := ParseCIDRs("192.0.2.0/24,2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cidrs []netip.Prefix
		addr  string // "" is the zero Addr
		want  bool
	}{
		{defaults, "127.0.0.1", true},
		{defaults, "127.0.0.2", true}, // the second loopback the integration test uses
		{defaults, "::1", true},
		{defaults, "10.9.8.7", true},
		{defaults, "172.31.255.255", true},
		{defaults, "172.32.0.1", false},
		{defaults, "192.168.1.1", true},
		{defaults, "8.8.8.8", false},
		{defaults, "2001:4860::8888", false},
		{defaults, "::ffff:10.1.1.1", true}, // IPv4 client on a dual-stack socket
		{defaults, "::ffff:8.8.8.8", false}, // ditto, public
		{defaults, "fe80::1%eth0", true},    // zone dropped
		{defaults, "", false},               // invalid address
		{custom, "192.0.2.200", true},
		{custom, "192.0.3.1", false},
		{custom, "2001:db8:1::1", true},
		{custom, "127.0.0.1", false},
		{[]netip.Prefix{}, "127.0.0.1", false}, // empty list: nobody
		{nil, "127.0.0.1", false},
	}
	for _, tt := range tests {
		var a netip.Addr
		if tt.addr != "" {
			a = netip.MustParseAddr(tt.addr)
		}
		if got := AllowedRecursion(tt.cidrs, a); got != tt.want {
			t.Errorf("AllowedRecursion(%v, %q) = %v, want %v", tt.cidrs, tt.addr, got, tt.want)
		}
	}
}

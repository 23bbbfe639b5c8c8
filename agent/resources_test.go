package agent

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/atollhq/atoll/events"
)

func TestParseAttributes(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{in: "", want: map[string]string{}},
		{in: "region:oslo", want: map[string]string{"region": "oslo"}},
		{in: "region:oslo;zone:a", want: map[string]string{"region": "oslo", "zone": "a"}},
		{in: " region : oslo ; zone:a; ", want: map[string]string{"region": "oslo", "zone": "a"}},
		{in: "rack:r1\nos:linux", want: map[string]string{"rack": "r1", "os": "linux"}},
		{in: "url:http://x:80", want: map[string]string{"url": "http://x:80"}},
		{in: "cpu.kind:x86_64;k-8/s:1", want: map[string]string{"cpu.kind": "x86_64", "k-8/s": "1"}},
		{in: "region", wantErr: "want key:value"},
		{in: ":oslo", wantErr: "empty key"},
		{in: "region:", wantErr: "empty value"},
		{in: "re gion:oslo", wantErr: "not allowed in key"},
		{in: "region:oslo;region:bergen", wantErr: "given twice"},
	}
	for _, tt := range tests {
		got, err := ParseAttributes(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseAttributes(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tt.want) {
			t.Errorf("ParseAttributes(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParsePortRanges(t *testing.T) {
	r := func(b, e int) events.PortRange { return events.PortRange{Begin: b, End: e} }
	tests := []struct {
		in      string
		want    []events.PortRange
		wantErr string
	}{
		{in: "31000-32000", want: []events.PortRange{r(31000, 32000)}},
		{in: "31000-32000,33000-33100", want: []events.PortRange{r(31000, 32000), r(33000, 33100)}},
		{in: " 8080 , 9000-9001 ", want: []events.PortRange{r(8080, 8080), r(9000, 9001)}},
		{in: "[31000-32000, 33000-33100]", want: []events.PortRange{r(31000, 32000), r(33000, 33100)}},
		{in: "1-65535", want: []events.PortRange{r(1, 65535)}},
		{in: "", wantErr: "empty"},
		{in: "31000-32000,", wantErr: "empty range"},
		{in: "abc", wantErr: "not a port number"},
		{in: "31000-", wantErr: "not a port number"},
		{in: "0-10", wantErr: "out of range"},
		{in: "65000-70000", wantErr: "out of range"},
		{in: "32000-31000", wantErr: "ends before it begins"},
		{in: "31000-32000,31500-33000", wantErr: "overlap"},
		{in: "2000-3000,1000-2000", wantErr: "overlap"},
	}
	for _, tt := range tests {
		got, err := ParsePortRanges(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePortRanges(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParsePortRanges(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestDetectResources(t *testing.T) {
	r, err := DetectResources(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if r.Cpus < 1 || r.Mem <= 0 || r.Disk <= 0 {
		t.Errorf("resources = %+v", r)
	}
	if !slices.Equal(r.Ports, []events.PortRange{{Begin: 31000, End: 32000}}) {
		t.Errorf("ports = %v", r.Ports)
	}
	if _, err := DetectResources("/nonexistent/dir"); err == nil {
		t.Error("DetectResources of a missing dir: no error")
	}
}

func TestParseProcStat(t *testing.T) {
	line := "4242 (we ird) name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615"
	p, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if p.State != 'S' || p.StartTime != 987654 {
		t.Errorf("parsed %+v, want state S start 987654", p)
	}
	if _, err := parseProcStat([]byte("4242 (x) S 1")); err == nil {
		t.Error("short stat line: no error")
	}
}

package deploy

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// Example configs use documentation/benchmark addresses only
// (198.18.0.0/15), so that no copy-paste reaches a real network.
func TestExampleAddresses(t *testing.T) {
	allowed := []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("127.0.0.0/8")}
	ipv4 := regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)
	files := 0
	err := filepath.WalkDir("examples/three-regions", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, s := range ipv4.FindAllString(string(b), -1) {
			a, err := netip.ParseAddr(s)
			if err != nil {
				t.Errorf("%s: %s is no address", path, s)
				continue
			}
			ok := false
			for _, p := range allowed {
				ok = ok || p.Contains(a)
			}
			if !ok {
				t.Errorf("%s: %s outside 198.18.0.0/15", path, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 20 {
		t.Errorf("%d example files, want the 3 regions' set", files)
	}
}

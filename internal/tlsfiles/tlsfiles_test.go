package tlsfiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atollhq/atoll/internal/testca"
)

func TestServerAndClient(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t)
	caFile, cert, key := ca.WriteFiles(t, dir, "127.0.0.1", "master.test")
	s, err := Server(cert, key)
	if err != nil || len(s.Certificates) != 1 {
		t.Fatalf("server: %v", err)
	}
	c, err := Client(caFile)
	if err != nil || c.RootCAs == nil {
		t.Fatalf("client: %v", err)
	}
	if c, err := Client(""); err != nil || c.RootCAs != nil {
		t.Fatalf("no CA file: system roots, got %v %v", c, err)
	}

	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"cert without key", errOf(Server(cert, "")), "without its key"},
		{"key without cert", errOf(Server("", key)), "without its certificate"},
		{"key and cert swapped", errOf(Server(key, cert)), "certificate " + key},
		{"missing CA", errOf(Client(filepath.Join(dir, "nope.pem"))), "no such file"},
		{"CA file with a key only", errOf(Client(key)), "holds no PEM certificate"},
		{"CA file of junk", errOf(Client(junk)), "holds no PEM certificate"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, c.err, c.want)
		}
	}
}

func errOf[T any](_ T, err error) error { return err }

package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atollhq/atoll/internal/testca"
)

// logTo is a logger whose lines land in buf.
func logTo(buf *bytes.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(buf, nil)) }

func writeFile(t *testing.T, dir, name, data string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

// The master's credentials come from a file (first line), the environment
// or, visibly, the command line; bad ones stop it with the reason.
func TestAPISecurityCredentials(t *testing.T) {
	dir := t.TempDir()
	private := writeFile(t, dir, "creds", "admin:pa:ss\nsecond line ignored\n", 0o600)
	crlf := writeFile(t, dir, "crlf", "admin:s3cret\r\n", 0o600)
	shared := writeFile(t, dir, "shared", "admin:s3cret\n", 0o644)
	empty := writeFile(t, dir, "empty", "\nadmin:s3cret\n", 0o600)
	noColon := writeFile(t, dir, "nocolon", "admin\n", 0o600)
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	for _, c := range []struct {
		name  string
		flags apiSecurityFlags
		env   string
		want  string // credentials, or the error's text
		fails bool
		warn  string // in the log
	}{
		{name: "none"},
		{name: "file", flags: apiSecurityFlags{credentialsFile: private}, want: "admin:pa:ss"},
		{name: "file with CRLF", flags: apiSecurityFlags{credentialsFile: crlf}, want: "admin:s3cret"},
		{name: "file open to others", flags: apiSecurityFlags{credentialsFile: shared}, want: "admin:s3cret", warn: "mode 0644"},
		{name: "environment", env: "ops:env", want: "ops:env"},
		{name: "file over environment", flags: apiSecurityFlags{credentialsFile: private}, env: "ops:env", want: "admin:pa:ss"},
		{name: "argument", flags: apiSecurityFlags{credentials: "ops:arg"}, want: "ops:arg", warn: "ps"},
		{name: "argument and file", flags: apiSecurityFlags{credentials: "a:b", credentialsFile: private}, fails: true, want: "give one"},
		{name: "missing file", flags: apiSecurityFlags{credentialsFile: filepath.Join(dir, "nope")}, fails: true, want: "no such file"},
		{name: "first line empty", flags: apiSecurityFlags{credentialsFile: empty}, fails: true, want: "first line is empty"},
		{name: "no colon", flags: apiSecurityFlags{credentialsFile: noColon}, fails: true, want: "user:password"},
		{name: "bad environment", env: "admin", fails: true, want: "$ATOLL_HTTP_CREDENTIALS: HTTP credentials must be user:password"},
		{name: "a folder", flags: apiSecurityFlags{credentialsFile: dir}, fails: true, want: "not a regular file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env[envHTTPCredentials] = c.env
			var log bytes.Buffer
			s, err := c.flags.resolve(getenv, logTo(&log))
			if c.fails {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err %v, want %q", err, c.want)
				}
				if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "pa:ss") {
					t.Fatalf("the error shows a secret: %v", err)
				}
				return
			}
			if err != nil || s.credentials != c.want {
				t.Fatalf("credentials %q, %v; want %q", s.credentials, err, c.want)
			}
			if c.warn != "" && !strings.Contains(log.String(), c.warn) {
				t.Errorf("no warning with %q: %s", c.warn, log.String())
			}
			if c.warn == "" && strings.Contains(log.String(), "level=WARN") {
				t.Errorf("unexpected warning: %s", log.String())
			}
			if strings.Contains(log.String(), "s3cret") || strings.Contains(log.String(), "pa:ss") {
				t.Errorf("the log shows a secret: %s", log.String())
			}
		})
	}
}

func TestAPISecurityTLSAndCORS(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t)
	caFile, cert, key := ca.WriteFiles(t, dir, "127.0.0.1")
	getenv := func(string) string { return "" }
	var log bytes.Buffer

	s, err := (&apiSecurityFlags{tlsCert: cert, tlsKey: key, tlsCA: caFile, corsOrigins: " https://a.example , http://b.example:8080,"}).resolve(getenv, logTo(&log))
	if err != nil || s.tls == nil || len(s.tls.Certificates) != 1 || s.peerTLS == nil || s.peerTLS.RootCAs == nil {
		t.Fatalf("TLS: %+v %v", s, err)
	}
	if strings.Join(s.corsOrigins, " ") != "https://a.example http://b.example:8080" {
		t.Errorf("origins %q", s.corsOrigins)
	}
	for _, c := range []struct {
		flags apiSecurityFlags
		want  string
	}{
		{apiSecurityFlags{tlsCert: cert}, "without its key"},
		{apiSecurityFlags{tlsKey: key}, "without its certificate"},
		{apiSecurityFlags{tlsCA: caFile}, "--tls-ca is for an API served over HTTPS"},
		{apiSecurityFlags{tlsCert: key, tlsKey: cert}, "certificate " + key},
		{apiSecurityFlags{tlsCert: cert, tlsKey: key, tlsCA: key}, "holds no PEM certificate"},
	} {
		if _, err := c.flags.resolve(getenv, logTo(&log)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.flags, err, c.want)
		}
	}
}

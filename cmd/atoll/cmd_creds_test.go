package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events/embedded"
	"github.com/atollhq/atoll/internal/natsauth"
)

// TestCredsCommands runs `atoll creds` as an operator would: init, issue
// for each role, list, revoke; every file with a secret is the owner's only.
func TestCredsCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth")
	run := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := runCreds(context.Background(), append(args, "--dir", dir), &out, &errb); code != want {
			t.Fatalf("atoll creds %v: exit %d, want %d; stderr %s", args, code, want, errb.String())
		}
		return out.String() + errb.String()
	}
	run(0, "init")
	run(1, "init") // never overwrites an authority
	run(0, "agent", "--name", "h1.example.com")
	run(0, "sidecar", "--name", "h1.example.com")
	run(0, "master", "--name", "m1", "--out", filepath.Join(dir, "m1.creds"))
	run(1, "agent", "--name", "bad_name")
	run(2, "agent")
	run(2, "wizard", "--name", "x")
	run(0, "tls", "--name", "n1", "--hosts", "n1,127.0.0.1")

	id, err := natsauth.ReadCreds(filepath.Join(dir, "creds", "agent-h1.example.com.creds"))
	if err != nil || id.Role != natsauth.RoleAgent || id.Name != "h1.example.com" || id.Prefix != "atoll" {
		t.Fatalf("agent creds: %+v, %v", id, err)
	}
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		secret := strings.HasSuffix(path, ".nk") || strings.HasSuffix(path, ".creds") || strings.HasSuffix(path, "-key.pem")
		if (d.IsDir() || secret) && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %04o, want no access for others", path, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A NATS server that trusts this authority, and the agent connected.
	trust, err := natsauth.LoadServerTrust(dir)
	if err != nil {
		t.Fatal(err)
	}
	trust.ResolverDir = filepath.Join(t.TempDir(), "resolver")
	srv, err := embedded.StartConfig(embedded.Config{Listen: "127.0.0.1:0", Trust: &trust})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	closed := make(chan struct{})
	nc, err := nats.Connect(srv.ClientURL(), append(id.Options(), nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))...)
	if err != nil {
		t.Fatalf("agent credential refused: %v", err)
	}
	defer nc.Close()

	list := run(0, "list")
	if strings.Count(list, "h1.example.com") != 2 || !strings.Contains(list, "m1") {
		t.Fatalf("list:\n%s", list)
	}
	out := run(0, "revoke", "--name", "h1.example.com", "--role", "agent")
	if !strings.Contains(out, "revoked 1 credential") || !strings.Contains(out, "not pushed") {
		t.Fatalf("revoke: %s", out)
	}
	run(1, "revoke", "--name", "h1.example.com", "--role", "agent") // nothing left to revoke
	select {
	case <-closed:
		t.Fatal("the connection closed before the revocation was pushed")
	default:
	}
	if out := run(0, "push", "--nats", srv.ClientURL()); !strings.Contains(out, "pushed") {
		t.Fatalf("push: %s", out)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked agent's connection is still open 5s after the push")
	}
	auth, err := natsauth.OpenAuthority(dir)
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, is := range auth.Issued() {
		if !is.RevokedAt.IsZero() {
			revoked++
		}
	}
	if revoked != 1 || len(auth.Account.Revocations) != 1 {
		t.Fatalf("revoked %d, account revocations %d; want 1, 1", revoked, len(auth.Account.Revocations))
	}
}

package natsauth_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
)

// TestRotateKeepsTheNewCredential rotates an agent's credential the way
// deploy/README.md says: issue a new one, connect with it, then revoke the
// old one by its key and push. The old connection is closed and cannot
// come back; the new one stays. Revoking by name would have cut off both.
func TestRotateKeepsTheNewCredential(t *testing.T) {
	dir := t.TempDir()
	auth, err := natsauth.CreateAuthority(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, auth)
	oldCreds, err := auth.Issue(events.Subjects{}, natsauth.RoleAgent, "h1")
	if err != nil {
		t.Fatal(err)
	}
	oldID, _ := natsauth.ParseCreds(oldCreds)
	closed := make(chan struct{})
	oldNC, err := nats.Connect(srv.ClientURL(), append(oldID.Options(), nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))...)
	if err != nil {
		t.Fatal(err)
	}
	defer oldNC.Close()
	newConn := connect(t, srv, auth, natsauth.RoleAgent, "h1")

	reopened, err := natsauth.OpenAuthority(dir)
	if err != nil {
		t.Fatal(err)
	}
	var oldKey string
	for _, is := range reopened.Issued() {
		if is.Name == "h1" && oldKey == "" {
			oldKey = is.PublicKey // the first issued: the old one
		}
	}
	is, err := reopened.RevokeKey(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if is.Role != natsauth.RoleAgent || is.Name != "h1" {
		t.Fatalf("revoked %s %q, want agent h1", is.Role, is.Name)
	}
	if err := reopened.Push(srv.ClientURL()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the old credential's connection still open 5s after the push")
	}
	if nc, err := nats.Connect(srv.ClientURL(), append(oldID.Options(), nats.NoReconnect())...); err == nil {
		nc.Close()
		t.Fatal("the old credential connected again")
	}
	if err := newConn.nc.FlushTimeout(2 * time.Second); err != nil || !newConn.nc.IsConnected() {
		t.Fatalf("the new credential's connection was cut off too: %v", err)
	}
	if _, err := reopened.RevokeKey(oldKey); err == nil {
		t.Fatal("revoking the same key again: no error")
	}
	if _, err := reopened.RevokeKey("UNOSUCHKEY"); err == nil {
		t.Fatal("revoking an unknown key: no error")
	}
	// The revocation is saved: the authority reopened once more lists it.
	again, err := natsauth.OpenAuthority(dir)
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, is := range again.Issued() {
		if !is.RevokedAt.IsZero() {
			revoked++
		}
	}
	if revoked != 1 {
		t.Fatalf("%d credentials revoked after reopening, want 1", revoked)
	}
}

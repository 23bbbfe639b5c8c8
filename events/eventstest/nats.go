// Package eventstest holds helpers for tests of code built on package
// events: an embedded NATS server, an in-memory fake leader, a follower
// handler that mirrors the state, state comparison and polling.
//
// It is imported only by tests; nothing in it is meant for production.
package eventstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/embedded"
	"github.com/atollhq/atoll/internal/natsauth"
)

// NATS is a real NATS server with authentication on, as atoll runs it, and
// the authority that issues its credentials.
type NATS struct {
	*server.Server
	Authority *natsauth.Authority
}

// StartNATS starts an embedded NATS server on a random port of 127.0.0.1
// that accepts only credentials of a new authority, and shuts it down when
// the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	auth, err := natsauth.NewAuthority("test")
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	trust := auth.Trust()
	srv, err := embedded.StartConfig(embedded.Config{Listen: "127.0.0.1:0", Trust: &trust})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return &NATS{Server: srv, Authority: auth}
}

// Creds issues a credential of role and name for the default subject
// prefix.
func (n *NATS) Creds(t testing.TB, role natsauth.Role, name string) natsauth.Identity {
	t.Helper()
	return n.CredsIn(t, events.Subjects{}, role, name)
}

// CredsIn issues a credential of role and name for subj's prefix.
func (n *NATS) CredsIn(t testing.TB, subj events.Subjects, role natsauth.Role, name string) natsauth.Identity {
	t.Helper()
	data, err := n.Authority.Issue(subj, role, name)
	if err != nil {
		t.Fatalf("issue %s credential %q: %v", role, name, err)
	}
	id, err := natsauth.ParseCreds(data)
	if err != nil {
		t.Fatalf("parse %s credential %q: %v", role, name, err)
	}
	return id
}

// ConnectAs dials the server with a new credential of role and name and
// closes the connection when the test ends.
func (n *NATS) ConnectAs(t testing.TB, role natsauth.Role, name string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	return n.ConnectIn(t, events.Subjects{}, role, name, opts...)
}

// ConnectIn is ConnectAs for subj's prefix.
func (n *NATS) ConnectIn(t testing.TB, subj events.Subjects, role natsauth.Role, name string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	id := n.CredsIn(t, subj, role, name)
	opts = append(append([]nats.Option{nats.Name(t.Name())}, id.Options()...), opts...)
	nc, err := nats.Connect(n.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect to nats at %s as %s %s: %v", n.ClientURL(), role, name, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Connect dials srv with the master's credential (the role that may do
// everything a leader does) and closes the connection when the test ends.
func Connect(t testing.TB, srv *NATS, opts ...nats.Option) *nats.Conn {
	t.Helper()
	return srv.ConnectAs(t, natsauth.RoleMaster, "master-test", opts...)
}

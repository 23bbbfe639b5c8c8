package natsauth_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/embedded"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/pki"
	"github.com/atollhq/atoll/internal/tlsfiles"
)

// start runs a real NATS server that trusts auth (with a resolver dir, as
// atoll nats runs it).
func start(t *testing.T, auth *natsauth.Authority) *server.Server {
	t.Helper()
	trust := auth.Trust()
	trust.ResolverDir = t.TempDir()
	srv, err := embedded.StartConfig(embedded.Config{Listen: "127.0.0.1:0", Trust: &trust})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// client is a connection that records the permission errors the server
// sends it.
type client struct {
	nc   *nats.Conn
	mu   sync.Mutex
	errs []error
}

func (c *client) violations() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s []string
	for _, e := range c.errs {
		s = append(s, e.Error())
	}
	return strings.Join(s, "; ")
}

func connect(t *testing.T, srv *server.Server, auth *natsauth.Authority, role natsauth.Role, name string) *client {
	t.Helper()
	creds, err := auth.Issue(events.Subjects{}, role, name)
	if err != nil {
		t.Fatal(err)
	}
	id, err := natsauth.ParseCreds(creds)
	if err != nil {
		t.Fatal(err)
	}
	if id.Role != role || id.Name != name {
		t.Fatalf("identity = %s %q, want %s %q", id.Role, id.Name, role, name)
	}
	c := &client{}
	opts := append(id.Options(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		c.mu.Lock()
		c.errs = append(c.errs, err)
		c.mu.Unlock()
	}), nats.NoReconnect())
	c.nc, err = nats.Connect(srv.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect as %s %s: %v", role, name, err)
	}
	t.Cleanup(c.nc.Close)
	return c
}

// TestServerHoldsEachRoleToItsSubjects publishes and subscribes, as each
// role, where it may and where it may not, and checks what a listening
// master (or agent) receives: only what the role is allowed to send.
func TestServerHoldsEachRoleToItsSubjects(t *testing.T) {
	auth, err := natsauth.NewAuthority("test")
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, auth)
	subj := events.Subjects{}
	master := connect(t, srv, auth, natsauth.RoleMaster, "m1")

	// Everything published anywhere under the prefix, as the master and
	// an agent on h2 would see it.
	got := make(chan string, 100)
	for _, s := range []string{subj.FromAgents(events.VerbRegister), subj.FromAgents(events.VerbHeartbeat),
		subj.FromAgents(events.VerbStatus), subj.AllEvents(), subj.LBReports()} {
		if _, err := master.nc.Subscribe(s, func(m *nats.Msg) { got <- m.Subject }); err != nil {
			t.Fatal(err)
		}
	}
	h2 := connect(t, srv, auth, natsauth.RoleAgent, "h2")
	if _, err := h2.nc.Subscribe(subj.ToAgent("h2"), func(m *nats.Msg) { got <- m.Subject }); err != nil {
		t.Fatal(err)
	}
	flush(t, master.nc, h2.nc)

	h1 := connect(t, srv, auth, natsauth.RoleAgent, "h1")
	side := connect(t, srv, auth, natsauth.RoleSidecar, "h1")
	obs := connect(t, srv, auth, natsauth.RoleObserver, "cli")
	allowed := []struct {
		c    *client
		subj string
	}{
		{h1, subj.Register("h1")}, {h1, subj.Heartbeat("h1")}, {h1, subj.Status("h1")},
		{side, subj.LBReport("h1")},
		{master, subj.Event(events.AppUpdated)}, {master, subj.Launch("h2")},
	}
	refused := []struct {
		c    *client
		subj string
	}{
		{h1, subj.Register("h2")}, {h1, subj.Status("h2")}, {h1, subj.Launch("h2")},
		{h1, subj.Event(events.AppUpdated)}, {h1, subj.LBReport("h1")},
		{side, subj.Event(events.AppUpdated)}, {side, subj.LBReport("h2")}, {side, subj.Register("h1")},
		{obs, subj.Event(events.TaskUpdated)}, {obs, subj.Launch("h2")}, {obs, subj.LBReport("cli")},
	}
	for _, p := range refused {
		_ = p.c.nc.Publish(p.subj, []byte("forged"))
		flush(t, p.c.nc)
	}
	for _, p := range allowed {
		if err := p.c.nc.Publish(p.subj, []byte("ok")); err != nil {
			t.Fatal(err)
		}
		flush(t, p.c.nc)
	}
	want := map[string]bool{}
	for _, p := range allowed {
		want[p.subj] = true
	}
	deadline := time.After(5 * time.Second)
	for len(want) > 0 {
		select {
		case s := <-got:
			if !want[s] {
				t.Errorf("received %s, which its sender may not publish", s)
			}
			delete(want, s)
		case <-deadline:
			t.Fatalf("allowed publishes not received: %v", want)
		}
	}
	select {
	case s := <-got:
		t.Errorf("received %s, which its sender may not publish", s)
	case <-time.After(200 * time.Millisecond):
	}
	for _, c := range []*client{h1, side, obs} {
		waitFor(t, func() bool { return strings.Contains(c.violations(), "Permissions Violation for Publish") }, "publish violations reported")
	}

	// Subscriptions: an agent may not hear another agent's launches or
	// the events; nobody may read another's reply inbox.
	for _, s := range []struct {
		c    *client
		subj string
	}{
		{h1, subj.Launch("h2")}, {h1, subj.AllEvents()}, {h1, "_INBOX.>"}, {h1, natsauth.InboxPrefix(natsauth.RoleAgent, "h2") + ".>"},
		{side, subj.FromAgents("*")}, {side, natsauth.InboxPrefix(natsauth.RoleMaster, "m1") + ".>"},
		{obs, subj.ToAgent("*")},
	} {
		if _, err := s.c.nc.SubscribeSync(s.subj); err != nil {
			t.Fatal(err)
		}
		flush(t, s.c.nc)
		waitFor(t, func() bool { return strings.Contains(s.c.violations(), "Subscription to \""+s.subj+"\"") },
			"subscription to "+s.subj+" refused")
	}
}

// TestRequestRepliesArePrivate checks that an agent answers the master's
// request through the response permission, and that the answer reaches
// the master's own inbox only.
func TestRequestRepliesArePrivate(t *testing.T) {
	auth, err := natsauth.NewAuthority("test")
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, auth)
	subj := events.Subjects{}
	master := connect(t, srv, auth, natsauth.RoleMaster, "m1")
	h1 := connect(t, srv, auth, natsauth.RoleAgent, "h1")
	if _, err := h1.nc.Subscribe(subj.Launch("h1"), func(m *nats.Msg) { _ = m.Respond([]byte("launched")) }); err != nil {
		t.Fatal(err)
	}
	flush(t, h1.nc)
	msg, err := master.nc.Request(subj.Launch("h1"), []byte("x"), 2*time.Second)
	if err != nil {
		t.Fatalf("request to agent: %v (agent: %s)", err, h1.violations())
	}
	if string(msg.Data) != "launched" || !strings.HasPrefix(msg.Subject, natsauth.InboxPrefix(natsauth.RoleMaster, "m1")) {
		t.Fatalf("reply %q on %s", msg.Data, msg.Subject)
	}
}

// TestNoCredentialsNoConnection: the server refuses a client without a
// credential, and one signed by another authority.
func TestNoCredentialsNoConnection(t *testing.T) {
	auth, err := natsauth.NewAuthority("test")
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, auth)
	if nc, err := nats.Connect(srv.ClientURL(), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("err = %v, want an authorization error", err)
	}
	other, err := natsauth.NewAuthority("other")
	if err != nil {
		t.Fatal(err)
	}
	creds, _ := other.Issue(events.Subjects{}, natsauth.RoleMaster, "m1")
	id, _ := natsauth.ParseCreds(creds)
	if nc, err := nats.Connect(srv.ClientURL(), append(id.Options(), nats.NoReconnect())...); err == nil {
		nc.Close()
		t.Fatal("connected with a credential of another authority")
	}
}

// TestRevokedCredentialIsCutOff revokes an agent's credential and pushes
// the account to the server: its connection is closed and it cannot
// connect again; another agent's stays.
func TestRevokedCredentialIsCutOff(t *testing.T) {
	dir := t.TempDir()
	auth, err := natsauth.CreateAuthority(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, auth)
	creds, err := auth.Issue(events.Subjects{}, natsauth.RoleAgent, "h1")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := natsauth.ParseCreds(creds)
	closed := make(chan struct{})
	nc, err := nats.Connect(srv.ClientURL(), append(id.Options(), nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	keep := connect(t, srv, auth, natsauth.RoleAgent, "h2")

	// The authority as reopened from its folder (as `atoll creds revoke`
	// does) revokes and pushes.
	reopened, err := natsauth.OpenAuthority(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := reopened.Revoke(natsauth.RoleAgent, "h1"); err != nil || n != 1 {
		t.Fatalf("revoke = %d, %v", n, err)
	}
	if err := reopened.Push(srv.ClientURL()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("revoked connection still open after 5s")
	}
	if nc2, err := nats.Connect(srv.ClientURL(), append(id.Options(), nats.NoReconnect())...); err == nil {
		nc2.Close()
		t.Fatal("revoked credential connected again")
	}
	if !keep.nc.IsConnected() {
		t.Fatal("another agent's connection was closed too")
	}
	if _, err := reopened.Revoke(natsauth.RoleAgent, "h1"); err == nil {
		t.Fatal("revoking again: no error")
	}
}

func flush(t *testing.T, ncs ...*nats.Conn) {
	t.Helper()
	for _, nc := range ncs {
		if err := nc.FlushTimeout(2 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not after 5s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMutualTLS: a server with a CA for clients refuses a client without a
// certificate of that CA, even with a valid credential, and takes one
// with both.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	auth, err := natsauth.NewAuthority("test")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.OpenOrCreateCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	caFile := dir + "/" + pki.CACertFile
	file := func(n string) string { return dir + "/" + n }
	if err := ca.IssueFiles("nats", []string{"127.0.0.1"}, file("srv.pem"), file("srv-key.pem")); err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueFiles("agent-1", []string{"agent-1"}, file("cli.pem"), file("cli-key.pem")); err != nil {
		t.Fatal(err)
	}
	serverTLS, err := tlsfiles.Files{Cert: file("srv.pem"), Key: file("srv-key.pem"), CA: caFile}.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	trust := auth.Trust()
	srv, err := embedded.StartConfig(embedded.Config{Listen: "127.0.0.1:0", Trust: &trust, TLS: serverTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	creds, _ := auth.Issue(events.Subjects{}, natsauth.RoleAgent, "agent-1")
	id, _ := natsauth.ParseCreds(creds)

	noCert, _ := tlsfiles.Files{CA: caFile}.ClientConfig()
	if nc, err := nats.Connect(srv.ClientURL(), append(id.Options(), nats.Secure(noCert), nats.NoReconnect())...); err == nil {
		nc.Close()
		t.Fatal("connected without a client certificate")
	}
	withCert, err := tlsfiles.Files{CA: caFile, Cert: file("cli.pem"), Key: file("cli-key.pem")}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL(), append(id.Options(), nats.Secure(withCert), nats.NoReconnect())...)
	if err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	nc.Close()
	// Without TLS at all, the server refuses before any credential.
	if nc, err := nats.Connect(srv.ClientURL(), append(id.Options(), nats.NoReconnect())...); err == nil {
		nc.Close()
		t.Fatal("connected without TLS")
	}
}

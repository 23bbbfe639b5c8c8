package embedded

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/freeport"
	"github.com/atollhq/atoll/internal/natsauth"
)

// TestClusterRoutesMessages starts two servers that route to each other
// and checks that a message published on one reaches a subscriber on the
// other: the real server's clustering, as `atoll nats --routes` runs it.
func TestClusterRoutesMessages(t *testing.T) {
	route1 := freeport.Addr(t)
	route2 := freeport.Addr(t)
	routes := []string{"nats://" + route1, "nats://" + route2}
	auth, err := natsauth.NewAuthority("test")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := auth.Issue(events.Subjects{}, natsauth.RoleMaster, "m1")
	if err != nil {
		t.Fatal(err)
	}
	id, err := natsauth.ParseCreds(creds)
	if err != nil {
		t.Fatal(err)
	}
	start := func(name, route string) *server.Server {
		trust := auth.Trust()
		srv, err := StartConfig(Config{Listen: "127.0.0.1:0", Name: name, ClusterListen: route, Routes: routes, Trust: &trust})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		return srv
	}
	connect := func(srv *server.Server) *nats.Conn {
		// Each server must see its peer before the test can rely on routing.
		deadline := time.Now().Add(10 * time.Second)
		for srv.NumRoutes() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no route after 10s", srv.Name())
			}
			time.Sleep(20 * time.Millisecond)
		}
		nc, err := nats.Connect(srv.ClientURL(), id.Options()...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	srv1, srv2 := start("n1", route1), start("n2", route2)
	nc1, nc2 := connect(srv1), connect(srv2)

	subject := events.Subjects{}.Event(events.Sync)
	sub, err := nc2.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc2.Flush(); err != nil {
		t.Fatal(err)
	}
	// Interest crosses the route asynchronously: publish until it arrives.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		if err := nc1.Publish(subject, fmt.Appendf(nil, "hello %d", i)); err != nil {
			t.Fatal(err)
		}
		msg, err := sub.NextMsg(100 * time.Millisecond)
		if err == nil {
			t.Logf("routed: %s", msg.Data)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message routed from n1 to n2 after 10s: %v", err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	trust, _ := natsauth.LoadServerTrust(t.TempDir()) // nothing there: an error
	for _, c := range []Config{
		{Listen: "127.0.0.1:0"}, // no trust: authentication is always on
		{Listen: "127.0.0.1:0", Trust: &trust},
		{Listen: "nohostport"},
		{Listen: "127.0.0.1:0", Routes: []string{"nats://127.0.0.1:6222"}},
		{Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:x"},
		{Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", Routes: []string{"http://a:1"}},
	} {
		if _, err := c.options(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if got := ParseRoutes(" nats://a:1, ,nats://b:2 "); len(got) != 2 || got[1] != "nats://b:2" {
		t.Errorf("ParseRoutes = %q", got)
	}
}

// TestRefusalsAreLogged: the server says, in its log, whom it refused and
// for what.
func TestRefusalsAreLogged(t *testing.T) {
	auth, err := natsauth.NewAuthority("test")
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuffer
	trust := auth.Trust()
	srv, err := StartConfig(Config{Listen: "127.0.0.1:0", Trust: &trust, Log: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	creds, _ := auth.Issue(events.Subjects{}, natsauth.RoleSidecar, "h1")
	id, _ := natsauth.ParseCreds(creds)
	nc, err := nats.Connect(srv.ClientURL(), append(id.Options(), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.Publish(events.Subjects{}.Event(events.AppUpdated), []byte("{}"))
	_ = nc.Flush()
	if nc2, err := nats.Connect(srv.ClientURL(), nats.NoReconnect()); err == nil {
		nc2.Close()
		t.Fatal("connected without credentials")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), "Publish Violation") || !strings.Contains(buf.String(), "authentication error") {
		if time.Now().After(deadline) {
			t.Fatalf("server log after 5s:\n%s", buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

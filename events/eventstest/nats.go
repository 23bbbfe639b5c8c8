// Package eventstest holds helpers for tests of code built on package
// events: an embedded NATS server, an in-memory fake leader, a follower
// handler that mirrors the state, state comparison and polling.
//
// It is imported only by tests; nothing in it is meant for production.
package eventstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// StartNATS starts an embedded NATS server on a random port of 127.0.0.1
// and shuts it down when the test ends.
func StartNATS(t testing.TB) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host:   "127.0.0.1",
		Port:   -1,
		NoLog:  true,
		NoSigs: true,
	})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		t.Fatalf("start nats: not ready for connections after 10s")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// Connect dials srv and closes the connection when the test ends.
func Connect(t testing.TB, srv *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.Name(t.Name())}, opts...)
	nc, err := nats.Connect(srv.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect to nats at %s: %v", srv.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

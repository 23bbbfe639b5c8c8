package integration

import (
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/natsenv"
)

// natsEnv is the cluster's NATS as operators run it: authentication and
// TLS on, an authority (and CA) in the test's folder that issues one
// credential per process, as `atoll creds` does.
type natsEnv struct {
	t *testing.T
	*natsenv.Env
}

func startNATS(t *testing.T, dir string) *natsEnv {
	t.Helper()
	env, err := natsenv.Start(filepath.Join(dir, "auth"), true)
	if err != nil {
		t.Fatal(err)
	}
	return &natsEnv{t: t, Env: env}
}

// args are the flags that connect an atoll process as role and name.
func (e *natsEnv) args(role natsauth.Role, name string) []string {
	e.t.Helper()
	args, err := e.Args(role, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return args
}

// connect is a connection of the test's own, as role and name.
func (e *natsEnv) connect(role natsauth.Role, name string, opts ...nats.Option) *nats.Conn {
	e.t.Helper()
	nc, err := e.Connect(role, name, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	return nc
}

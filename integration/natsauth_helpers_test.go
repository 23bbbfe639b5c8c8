package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// devAPI is the API URL of an `atoll dev` whose data dir is dataDir, with
// the credentials it made there on its first run (user:pass@ in the URL,
// as the CLI takes them too).
func devAPI(t *testing.T, dataDir, httpAddr string) string {
	t.Helper()
	path := filepath.Join(dataDir, "auth", "api-credentials")
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if line, _, _ := strings.Cut(string(data), "\n"); err == nil && strings.Contains(line, ":") {
			return "http://" + line + "@" + httpAddr
		}
		if time.Now().After(deadline) {
			t.Fatalf("atoll dev made no API credentials in %s after 20s: %v", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

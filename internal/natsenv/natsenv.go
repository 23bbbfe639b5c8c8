// Package natsenv runs a NATS server as atoll runs it — authentication
// always on, TLS optional — with an authority in a folder that issues one
// credential per process, as `atoll creds` does. For integration tests and
// benchmarks that start real atoll processes.
package natsenv

import (
	"fmt"
	"path/filepath"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/embedded"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/pki"
	"github.com/atollhq/atoll/internal/tlsfiles"
)

// Env is a running NATS server and the authority it trusts.
type Env struct {
	Dir  string // the authority's folder
	Srv  *server.Server
	Auth *natsauth.Authority
	// CA is the CA file clients verify the server with ("" without TLS).
	CA string

	// issue serializes Auth.Issue (it appends to the authority's list):
	// a fleet of simulated agents connects from several goroutines.
	issue sync.Mutex
}

// Start makes an authority (and, with useTLS, a CA and server certificate)
// in dir and starts a server on 127.0.0.1 that trusts it. Shutdown is the
// caller's.
func Start(dir string, useTLS bool) (*Env, error) {
	e := &Env{Dir: dir}
	var err error
	if e.Auth, err = natsauth.CreateAuthority(dir, "atoll-test"); err != nil {
		return nil, err
	}
	trust := e.Auth.Trust()
	trust.ResolverDir = filepath.Join(dir, "resolver")
	cfg := embedded.Config{Listen: "127.0.0.1:0", Trust: &trust}
	if useTLS {
		ca, err := pki.OpenOrCreateCA(dir, "atoll-test")
		if err != nil {
			return nil, err
		}
		e.CA = filepath.Join(dir, pki.CACertFile)
		cert, key := filepath.Join(dir, "nats.pem"), filepath.Join(dir, "nats-key.pem")
		if err := ca.IssueFiles("nats", []string{"127.0.0.1"}, cert, key); err != nil {
			return nil, err
		}
		if cfg.TLS, err = (tlsfiles.Files{Cert: cert, Key: key}).ServerConfig(); err != nil {
			return nil, err
		}
	}
	if e.Srv, err = embedded.StartConfig(cfg); err != nil {
		return nil, err
	}
	return e, nil
}

// URL is the server's client URL.
func (e *Env) URL() string { return e.Srv.ClientURL() }

// Shutdown stops the server.
func (e *Env) Shutdown() { e.Srv.Shutdown() }

// CredsFile writes a new credential of role and name and returns its path.
func (e *Env) CredsFile(role natsauth.Role, name string) (string, error) {
	path := filepath.Join(e.Dir, "creds", string(role)+"-"+name+".creds")
	data, err := e.issueCreds(role, name)
	if err != nil {
		return "", err
	}
	return path, natsauth.WriteCreds(path, data)
}

// Args are the flags that connect an atoll process as role and name.
func (e *Env) Args(role natsauth.Role, name string) ([]string, error) {
	path, err := e.CredsFile(role, name)
	if err != nil {
		return nil, err
	}
	args := []string{"--nats", e.URL(), "--nats-creds", path}
	if e.CA != "" {
		args = append(args, "--nats-tls-ca", e.CA)
	}
	return args, nil
}

// Connect dials the server with a new credential of role and name.
func (e *Env) Connect(role natsauth.Role, name string, opts ...nats.Option) (*nats.Conn, error) {
	data, err := e.issueCreds(role, name)
	if err != nil {
		return nil, err
	}
	id, err := natsauth.ParseCreds(data)
	if err != nil {
		return nil, err
	}
	all := append(id.Options(), nats.Name(string(role)+"-"+name))
	if e.CA != "" {
		all = append(all, nats.RootCAs(e.CA))
	}
	nc, err := nats.Connect(e.URL(), append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect as %s %s: %w", role, name, err)
	}
	return nc, nil
}

// issueCreds issues a credential of role and name; safe for concurrent use.
func (e *Env) issueCreds(role natsauth.Role, name string) ([]byte, error) {
	e.issue.Lock()
	defer e.issue.Unlock()
	return e.Auth.Issue(events.Subjects{}, role, name)
}

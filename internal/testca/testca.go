// Package testca is a certificate authority for tests: a fresh CA per test
// (pki.NewCA, the cluster's own) that issues certificates for loopback
// names, in memory or as PEM files for processes under test.
package testca

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/atollhq/atoll/internal/pki"
)

// CA is a self-signed certificate authority.
type CA struct {
	*pki.CA
	// PEM is the CA certificate, for clients to trust.
	PEM []byte
}

// New makes a CA for the test.
func New(t testing.TB) *CA {
	t.Helper()
	ca, err := pki.NewCA("atoll test")
	if err != nil {
		t.Fatal(err)
	}
	return &CA{CA: ca, PEM: ca.CertPEM}
}

// Pool is a pool that trusts the CA only.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// ClientConfig verifies servers with the CA only.
func (ca *CA) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
}

// Issue makes a certificate for hosts (IP addresses or DNS names) and
// returns it and its key as PEM.
func (ca *CA) Issue(t testing.TB, hosts ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := ca.CA.Issue(hosts[0], hosts)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// ServerConfig serves a certificate for hosts.
func (ca *CA) ServerConfig(t testing.TB, hosts ...string) *tls.Config {
	t.Helper()
	c, k := ca.Issue(t, hosts...)
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// WriteFiles writes the CA certificate (ca.pem) and a server certificate
// for hosts (server.pem, server-key.pem, mode 0600) into dir.
func (ca *CA) WriteFiles(t testing.TB, dir string, hosts ...string) (caFile, certFile, keyFile string) {
	t.Helper()
	c, k := ca.Issue(t, hosts...)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	for _, f := range []struct {
		path string
		data []byte
	}{{caFile, ca.PEM}, {certFile, c}, {keyFile, k}} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

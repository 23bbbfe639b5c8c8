package tlsfiles

import (
	"crypto/tls"
	"fmt"
)

// Files name the PEM files of one side of a TLS connection. A server
// with CA set asks every client for a certificate signed by it (mTLS); a
// client with CA set verifies the server against it, and with Cert and Key
// set presents them.
type Files struct{ Cert, Key, CA string }

// Empty reports whether no file is set.
func (f Files) Empty() bool { return f.Cert == "" && f.Key == "" && f.CA == "" }

// ServerConfig is the tls.Config of a server with these files.
func (f Files) ServerConfig() (*tls.Config, error) {
	cfg, err := Server(f.Cert, f.Key)
	if err != nil {
		return nil, err
	}
	if f.CA != "" {
		pool, err := Pool(f.CA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientConfig is the tls.Config of a client with these files, or nil
// when none is set.
func (f Files) ClientConfig() (*tls.Config, error) {
	if f.Empty() {
		return nil, nil
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, fmt.Errorf("tls: a client certificate needs both the certificate and the key file")
	}
	cfg, err := Client(f.CA)
	if err != nil {
		return nil, err
	}
	if f.Cert != "" {
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("tls: certificate %s, key %s: %w", f.Cert, f.Key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

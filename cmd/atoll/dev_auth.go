package main

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/pki"
	"github.com/atollhq/atoll/internal/tlsfiles"
)

// devAuth is atoll dev's trust: an authority, a CA and one credential per
// part, made in <data-dir>/auth on the first run and reused after, so that
// the dev cluster runs with authentication and TLS on like any other,
// without the user typing anything.
type devAuth struct {
	dir   string
	trust natsauth.ServerTrust
	tls   *tls.Config // the NATS server's
	ca    string      // the CA file clients verify the server with
}

// devSidecarNode is the node name of atoll dev's DNS and LB sidecar.
const devSidecarNode = "dev"

func setupDevAuth(dataDir string) (*devAuth, error) {
	dir := filepath.Join(dataDir, "auth")
	auth, err := natsauth.OpenOrCreateAuthority(dir, "atoll-dev")
	if err != nil {
		return nil, fmt.Errorf("dev authority: %w", err)
	}
	ca, err := pki.OpenOrCreateCA(dir, "atoll-dev")
	if err != nil {
		return nil, fmt.Errorf("dev CA: %w", err)
	}
	cert, key := filepath.Join(dir, "tls", "nats.pem"), filepath.Join(dir, "tls", "nats-key.pem")
	if _, err := os.Stat(key); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
			return nil, fmt.Errorf("dev TLS: %w", err)
		}
		if err := ca.IssueFiles("nats", []string{"127.0.0.1", "localhost", "::1"}, cert, key); err != nil {
			return nil, fmt.Errorf("dev TLS: %w", err)
		}
	}
	d := &devAuth{dir: dir, trust: auth.Trust(), ca: filepath.Join(dir, pki.CACertFile)}
	d.trust.ResolverDir = filepath.Join(dir, "resolver")
	if d.tls, err = (tlsfiles.Files{Cert: cert, Key: key}).ServerConfig(); err != nil {
		return nil, fmt.Errorf("dev TLS: %w", err)
	}
	return d, nil
}

// flags are the NATS client flags of the dev part with role and name: its
// credential (issued on first use) and the dev CA.
func (d *devAuth) flags(url string, role natsauth.Role, name string) (natsFlags, error) {
	path := credsPath(d.dir, role, name)
	if _, err := natsauth.ReadCreds(path); err != nil {
		auth, err := natsauth.OpenAuthority(d.dir)
		if err != nil {
			return natsFlags{}, err
		}
		if err := issueCredsFile(auth, events.Subjects{}, role, name, path); err != nil {
			return natsFlags{}, fmt.Errorf("dev credential %s %s: %w", role, name, err)
		}
	}
	return natsFlags{url: url, prefix: events.DefaultPrefix, creds: path, tls: tlsfiles.Files{CA: d.ca}}, nil
}

// defaultDevDataDir is atoll dev's --data-dir by default.
const defaultDevDataDir = ".atoll"

// devAPICredentialsFile is where atoll dev keeps the API's credentials when
// none are given, relative to its data dir; the CLI, run where `make run`
// runs (the default data dir), finds them there by itself.
const devAPICredentialsFile = "auth/api-credentials"

// devAPICredentials are the dev API's credentials: read from
// <data-dir>/auth/api-credentials, made there (user atoll, a random
// password, mode 0600) on the first run.
func devAPICredentials(dataDir string) (creds, path string, err error) {
	path = filepath.Join(dataDir, devAPICredentialsFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		secret := make([]byte, 18)
		if _, err := rand.Read(secret); err != nil {
			return "", "", fmt.Errorf("dev API credentials: %w", err)
		}
		if err := natsauth.WriteCreds(path, []byte("atoll:"+base64.RawURLEncoding.EncodeToString(secret)+"\n")); err != nil {
			return "", "", fmt.Errorf("dev API credentials: %w", err)
		}
	}
	creds, warn, err := readCredentialsFile(path)
	if err != nil {
		return "", "", err
	}
	if warn != "" {
		return "", "", fmt.Errorf("%s: %s", path, warn)
	}
	return creds, path, nil
}

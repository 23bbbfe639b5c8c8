package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/pki"
	"github.com/atollhq/atoll/internal/tlsfiles"
)

// The lab's NATS trust, made at up the way deploy/README.md enrols a real
// cluster: an authority and a CA in <dir>/auth (the operator's machine),
// one TLS certificate per host that runs a NATS server or client (its
// name and address), one credential per process (masters, agents and
// sidecars, each named after its host: an agent's credential name is its
// hostname), and on each NATS node a copy of only the three public JWTs.
// NATS nodes run with TLS and --tls-ca, so clients and routes both need a
// certificate of the lab's CA (mTLS).

func (l *Lab) authDir() string { return filepath.Join(l.Dir, "auth") }

// credsFile is p's NATS credential.
func (l *Lab) credsFile(p Proc) string {
	return filepath.Join(l.authDir(), "creds", p.Name+".creds")
}

// tlsFiles are h's certificate and key, and the CA.
func (l *Lab) tlsFiles(h Host) tlsfiles.Files {
	dir := filepath.Join(l.authDir(), "tls")
	return tlsfiles.Files{
		Cert: filepath.Join(dir, h.Name()+".pem"),
		Key:  filepath.Join(dir, h.Name()+"-key.pem"),
		CA:   filepath.Join(l.authDir(), pki.CACertFile),
	}
}

// trustDir is where NATS process p finds the public JWTs.
func (l *Lab) trustDir(p Proc) string { return filepath.Join(l.workDir(p), "trust") }

// natsRole is the credential role of a lab process, "" for one that is no
// NATS client.
func natsRole(p Proc) natsauth.Role {
	switch p.Role {
	case "master":
		return natsauth.RoleMaster
	case "agent":
		return natsauth.RoleAgent
	case "sidecar":
		return natsauth.RoleSidecar
	}
	return ""
}

// makeAuth makes the lab's authority, CA, certificates and credentials
// (up starts from an empty folder, so all of them are new).
func (l *Lab) makeAuth() error {
	auth, err := natsauth.CreateAuthority(l.authDir(), "atoll-lab")
	if err != nil {
		return fmt.Errorf("lab authority: %w", err)
	}
	ca, err := pki.OpenOrCreateCA(l.authDir(), "atoll-lab")
	if err != nil {
		return fmt.Errorf("lab CA: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(l.authDir(), "tls"), 0o700); err != nil {
		return fmt.Errorf("lab TLS: %w", err)
	}
	hosts := map[Host]bool{}
	for _, p := range procs() {
		if p.Role == "nats" {
			if err := l.copyTrust(p); err != nil {
				return err
			}
		} else if role := natsRole(p); role != "" {
			creds, err := auth.Issue(events.Subjects{}, role, p.Host.Name())
			if err != nil {
				return fmt.Errorf("credential of %s: %w", p.Name, err)
			}
			if err := natsauth.WriteCreds(l.credsFile(p), creds); err != nil {
				return err
			}
		} else {
			continue
		}
		if hosts[p.Host] {
			continue
		}
		hosts[p.Host] = true
		f := l.tlsFiles(p.Host)
		if err := ca.IssueFiles(p.Host.Name(), []string{p.Host.Name(), p.Host.IP()}, f.Cert, f.Key); err != nil {
			return fmt.Errorf("certificate of %s: %w", p.Host.Name(), err)
		}
	}
	return nil
}

// copyTrust puts the three public JWTs (and nothing secret) in NATS
// process p's trust folder, as an operator copies them to a NATS node.
func (l *Lab) copyTrust(p Proc) error {
	dir := l.trustDir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("trust of %s: %w", p.Name, err)
	}
	for _, f := range []string{natsauth.OperatorJWTFile, natsauth.SystemJWTFile, natsauth.AccountJWTFile} {
		b, err := os.ReadFile(filepath.Join(l.authDir(), f))
		if err != nil {
			return fmt.Errorf("trust of %s: %w", p.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return fmt.Errorf("trust of %s: %w", p.Name, err)
		}
	}
	return nil
}

// serverAuthArgs are a NATS node's trust and TLS flags: its own resolver
// folder (revocations pushed to it are kept there), its certificate, and
// the CA that clients' and routes' certificates must be signed by.
func (l *Lab) serverAuthArgs(p Proc) ([]string, error) {
	f := l.tlsFiles(p.Host)
	if err := need(p, l.trustDir(p), f.Cert, f.Key, f.CA); err != nil {
		return nil, err
	}
	return []string{"--auth-dir", l.trustDir(p), "--resolver-dir", filepath.Join(l.workDir(p), "resolver"),
		"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA}, nil
}

// clientAuthArgs are a NATS client's credential and TLS flags.
func (l *Lab) clientAuthArgs(p Proc) ([]string, error) {
	f := l.tlsFiles(p.Host)
	if err := need(p, l.credsFile(p), f.Cert, f.Key, f.CA); err != nil {
		return nil, err
	}
	return []string{"--nats-creds", l.credsFile(p),
		"--nats-tls-ca", f.CA, "--nats-tls-cert", f.Cert, "--nats-tls-key", f.Key}, nil
}

// need says clearly which file of p's is missing (a lab not made by up).
func need(p Proc, paths ...string) error {
	for _, path := range paths {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %s is missing: the lab's credentials are made by `make lab` (up)", p.Name, path)
		} else if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	return nil
}

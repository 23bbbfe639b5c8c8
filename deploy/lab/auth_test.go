package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/atollhq/atoll/internal/natsauth"
)

// flagValue is the value after flag in argv ("" when absent).
func flagValue(argv []string, flag string) string {
	for i, a := range argv[:len(argv)-1] {
		if a == flag {
			return argv[i+1]
		}
	}
	return ""
}

// TestEveryProcessHasItsOwnIdentity makes the lab's trust as up does and
// checks every command line: NATS nodes trust only the three public JWTs
// and serve TLS with a certificate for their address; every client has a
// credential of its role named after its host, which is the agent's
// --hostname and the sidecar's --node (the master refuses an agent whose
// hostname is not its credential's name), and a certificate for mTLS.
func TestEveryProcessHasItsOwnIdentity(t *testing.T) {
	l := &Lab{Dir: t.TempDir(), Bin: "/bin/atoll", AgentTimeout: 10e9}
	if _, _, err := l.command(procIn(regions[0], "agent1")); err == nil {
		t.Fatal("an agent's command line without credentials: no error")
	}
	if err := l.makeAuth(); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, p := range procs() {
		if err := l.ensureDir(p); err != nil {
			t.Fatal(err)
		}
		argv, _, err := l.command(p)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		switch p.Role {
		case "zk":
			if slices.ContainsFunc(argv, func(a string) bool { return a == "--nats-creds" || a == "--tls-cert" }) {
				t.Errorf("%s gets NATS files: %v", p.Name, argv)
			}
			continue
		case "nats":
			dir := flagValue(argv, "--auth-dir")
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatalf("%s: %v", p.Name, err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if want := []string{"account.jwt", "operator.jwt", "system.jwt"}; !slices.Equal(names, want) {
				t.Errorf("%s trusts %v, want only %v (no seed on a NATS node)", p.Name, names, want)
			}
			if flagValue(argv, "--tls-ca") == "" || flagValue(argv, "--resolver-dir") == "" {
				t.Errorf("%s: no --tls-ca (routes unauthenticated) or no own --resolver-dir: %v", p.Name, argv)
			}
			checkCertFor(t, p.Name, flagValue(argv, "--tls-cert"), p.Host.IP())
			continue
		}
		id, err := natsauth.ReadCreds(flagValue(argv, "--nats-creds"))
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if id.Role != natsRole(p) || id.Name != p.Host.Name() {
			t.Errorf("%s: credential is %s %q, want %s %q", p.Name, id.Role, id.Name, natsRole(p), p.Host.Name())
		}
		if other, dup := keys[id.JWT]; dup {
			t.Errorf("%s and %s share a credential", p.Name, other)
		}
		keys[id.JWT] = p.Name
		for flag, role := range map[string]string{"--hostname": "agent", "--node": "sidecar"} {
			if p.Role == role && flagValue(argv, flag) != id.Name {
				t.Errorf("%s: %s %q, credential %q", p.Name, flag, flagValue(argv, flag), id.Name)
			}
		}
		for _, f := range []string{"--nats-tls-ca", "--nats-tls-cert", "--nats-tls-key"} {
			if flagValue(argv, f) == "" {
				t.Errorf("%s: no %s: the NATS nodes ask for a client certificate", p.Name, f)
			}
		}
		checkCertFor(t, p.Name, flagValue(argv, "--nats-tls-cert"), p.Host.IP())
	}
	if len(keys) != 12 {
		t.Errorf("%d credentials, want 12 (3 masters, 6 agents, 3 sidecars)", len(keys))
	}
}

// checkCertFor wants the PEM certificate at path valid for ip.
func checkCertFor(t *testing.T, who, path, ip string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: %v", who, err)
		return
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Errorf("%s: %s holds no PEM", who, path)
		return
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Errorf("%s: %v", who, err)
		return
	}
	if err := c.VerifyHostname(ip); err != nil {
		t.Errorf("%s: %s: %v", who, filepath.Base(path), err)
	}
}

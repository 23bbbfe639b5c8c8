package natsauth

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// ServerTrust is what a NATS server needs to check credentials: the
// operator JWT (with its system account) and the accounts' JWTs. It holds
// no secret.
type ServerTrust struct {
	OperatorJWT string
	AccountJWTs []string
	// ResolverDir, if set, keeps account JWTs on disk and takes updates
	// pushed by the operator (NATS's "full" resolver: revocations reach
	// every server of a cluster). Empty keeps them in memory.
	ResolverDir string
}

// LoadServerTrust reads operator.jwt, system.jwt and account.jwt from dir
// (an authority's folder, or a copy of just those three files).
func LoadServerTrust(dir string) (ServerTrust, error) {
	t := ServerTrust{}
	for _, name := range []string{OperatorJWTFile, SystemJWTFile, AccountJWTFile} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return ServerTrust{}, fmt.Errorf("nats trust: %w", err)
		}
		if name == OperatorJWTFile {
			t.OperatorJWT = string(data)
		} else {
			t.AccountJWTs = append(t.AccountJWTs, string(data))
		}
	}
	return t, nil
}

// Apply makes opts trust only credentials signed under this operator.
func (t ServerTrust) Apply(opts *server.Options) error {
	oc, err := jwt.DecodeOperatorClaims(t.OperatorJWT)
	if err != nil {
		return fmt.Errorf("nats trust: operator JWT: %w", err)
	}
	if oc.SystemAccount == "" {
		return fmt.Errorf("nats trust: operator JWT names no system account")
	}
	var res server.AccountResolver
	if t.ResolverDir != "" {
		if err := os.MkdirAll(t.ResolverDir, 0o700); err != nil {
			return fmt.Errorf("nats trust: resolver dir: %w", err)
		}
		dr, err := server.NewDirAccResolver(t.ResolverDir, 0, 0, server.NoDelete)
		if err != nil {
			return fmt.Errorf("nats trust: resolver dir %s: %w", t.ResolverDir, err)
		}
		res = dr
	} else {
		res = &server.MemAccResolver{}
	}
	for _, a := range t.AccountJWTs {
		ac, err := jwt.DecodeAccountClaims(a)
		if err != nil {
			return fmt.Errorf("nats trust: account JWT: %w", err)
		}
		if ac.Issuer != oc.Subject && !oc.SigningKeys.Contains(ac.Issuer) {
			return fmt.Errorf("nats trust: account %s is not signed by operator %s", ac.Name, oc.Name)
		}
		// A newer JWT already in the resolver (a pushed revocation)
		// wins over the file's.
		if err := storeIfNewer(res, ac.Subject, a, ac.IssuedAt); err != nil {
			return err
		}
	}
	opts.TrustedOperators = []*jwt.OperatorClaims{oc}
	opts.SystemAccount = oc.SystemAccount
	opts.AccountResolver = res
	return nil
}

func storeIfNewer(res server.AccountResolver, pub, token string, issuedAt int64) error {
	if old, err := res.Fetch(pub); err == nil && old != "" {
		if oc, err := jwt.DecodeAccountClaims(old); err == nil && oc.IssuedAt >= issuedAt {
			return nil
		}
	}
	if err := res.Store(pub, token); err != nil {
		return fmt.Errorf("nats trust: store account %s: %w", pub, err)
	}
	return nil
}

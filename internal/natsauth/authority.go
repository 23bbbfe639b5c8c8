package natsauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/fsperm"
)

// Authority holds the keys that make and revoke a cluster's credentials.
// Whoever has its folder can enrol any node: keep it on the operator's
// machine (or the dev data dir), not on every node.
type Authority struct {
	operator, account, system nkeys.KeyPair
	// Account is the cluster account's current claims (revocations
	// included); AccountJWT is them signed by the operator.
	Account                 *jwt.AccountClaims
	OperatorJWT, AccountJWT string
	SystemJWT               string
	issued                  []Issued
	dir                     string // "" for an Authority kept in memory
}

// Issued records one credential the authority signed.
type Issued struct {
	Role      Role      `json:"role"`
	Name      string    `json:"name"`
	PublicKey string    `json:"publicKey"`
	Prefix    string    `json:"subjectPrefix"`
	IssuedAt  time.Time `json:"issuedAt"`
	RevokedAt time.Time `json:"revokedAt,omitzero"`
}

// File names in an authority's folder.
const (
	operatorSeedFile = "operator.nk"
	OperatorJWTFile  = "operator.jwt"
	accountSeedFile  = "account.nk"
	AccountJWTFile   = "account.jwt"
	systemSeedFile   = "system.nk"
	SystemJWTFile    = "system.jwt"
	SystemCredsFile  = "system.creds"
	issuedFile       = "issued.json"
)

// NewAuthority makes a new operator, system account and cluster account.
func NewAuthority(name string) (*Authority, error) {
	op, err := nkeys.CreateOperator()
	if err != nil {
		return nil, fmt.Errorf("create operator key: %w", err)
	}
	acc, err := nkeys.CreateAccount()
	if err != nil {
		return nil, fmt.Errorf("create account key: %w", err)
	}
	sys, err := nkeys.CreateAccount()
	if err != nil {
		return nil, fmt.Errorf("create system account key: %w", err)
	}
	a := &Authority{operator: op, account: acc, system: sys}
	opPub, _ := op.PublicKey()
	sysPub, _ := sys.PublicKey()
	accPub, _ := acc.PublicKey()

	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = name
	oc.SystemAccount = sysPub
	if a.OperatorJWT, err = oc.Encode(op); err != nil {
		return nil, fmt.Errorf("sign operator: %w", err)
	}
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	if a.SystemJWT, err = sc.Encode(op); err != nil {
		return nil, fmt.Errorf("sign system account: %w", err)
	}
	a.Account = jwt.NewAccountClaims(accPub)
	a.Account.Name = name
	if err := a.signAccount(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Authority) signAccount() error {
	s, err := a.Account.Encode(a.operator)
	if err != nil {
		return fmt.Errorf("sign account: %w", err)
	}
	a.AccountJWT = s
	return nil
}

// Trust is what a NATS server needs to check this authority's credentials.
func (a *Authority) Trust() ServerTrust {
	return ServerTrust{OperatorJWT: a.OperatorJWT, AccountJWTs: []string{a.SystemJWT, a.AccountJWT}}
}

// Issue signs a credential for role and name under subj's prefix and
// returns the creds file's content (JWT and seed). name is a node name for
// agents and sidecars (the agent's hostname); any hostname-like name for
// masters and observers.
func (a *Authority) Issue(subj events.Subjects, role Role, name string) ([]byte, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return nil, err
	}
	if err := events.ValidNodeName(name); err != nil {
		return nil, err
	}
	user, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("create user key: %w", err)
	}
	userPub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(userPub)
	uc.Name = name
	uc.IssuerAccount = "" // signed by the account key itself
	uc.Tags.Add(roleTag + string(role))
	prefix := subj.Prefix
	if prefix == "" {
		prefix = events.DefaultPrefix
	}
	uc.Tags.Add(prefixTag + prefix)
	uc.Permissions = Permissions(subj, role, name)
	token, err := uc.Encode(a.account)
	if err != nil {
		return nil, fmt.Errorf("sign %s credential %q: %w", role, name, err)
	}
	seed, err := user.Seed()
	if err != nil {
		return nil, fmt.Errorf("user seed: %w", err)
	}
	creds, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		return nil, fmt.Errorf("format creds: %w", err)
	}
	a.issued = append(a.issued, Issued{Role: role, Name: name, PublicKey: userPub, Prefix: prefix, IssuedAt: time.Now().UTC()})
	if a.dir != "" {
		if err := a.saveIssued(); err != nil {
			return nil, err
		}
	}
	return creds, nil
}

// systemCreds is a credential of the system account, for pushing account
// updates to the servers.
func (a *Authority) systemCreds() ([]byte, error) {
	user, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("create system user key: %w", err)
	}
	userPub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(userPub)
	uc.Name = "atoll-creds"
	token, err := uc.Encode(a.system)
	if err != nil {
		return nil, fmt.Errorf("sign system user: %w", err)
	}
	seed, _ := user.Seed()
	return jwt.FormatUserConfig(token, seed)
}

// Issued lists the credentials issued, oldest first.
func (a *Authority) Issued() []Issued { return append([]Issued(nil), a.issued...) }

// Revoke revokes every credential issued for role and name (role "" means
// any role) from now on, and re-signs the account. It returns how many it
// revoked; none is an error. The new AccountJWT must reach the NATS servers
// (Push) before they refuse the revoked credentials.
func (a *Authority) Revoke(role Role, name string) (int, error) {
	n, err := a.revoke(func(is Issued) bool { return is.Name == name && (role == "" || is.Role == role) })
	if err == nil && n == 0 {
		err = fmt.Errorf("no unrevoked credential issued for %s %q", roleOrAny(role), name)
	}
	return n, err
}

// RevokeKey revokes the one credential whose public key is pub (as
// `atoll creds list` shows it). Rotating a node's credential is: issue a
// new one, deploy it, then revoke the old one by its key (Revoke by name
// would revoke the new one too).
func (a *Authority) RevokeKey(pub string) (Issued, error) {
	var found Issued
	n, err := a.revoke(func(is Issued) bool {
		if is.PublicKey != pub {
			return false
		}
		found = is
		return true
	})
	if err != nil {
		return Issued{}, err
	}
	if n == 0 {
		return Issued{}, fmt.Errorf("no unrevoked credential with key %s", pub)
	}
	return found, nil
}

// revoke revokes every unrevoked credential that match picks, re-signs the
// account and saves it; none picked changes nothing.
func (a *Authority) revoke(match func(Issued) bool) (int, error) {
	now := time.Now().UTC()
	n := 0
	for i, is := range a.issued {
		if !is.RevokedAt.IsZero() || !match(is) {
			continue
		}
		a.Account.RevokeAt(is.PublicKey, now)
		a.issued[i].RevokedAt = now
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if err := a.signAccount(); err != nil {
		return 0, err
	}
	if a.dir != "" {
		if err := writeSecret(filepath.Join(a.dir, AccountJWTFile), []byte(a.AccountJWT)); err != nil {
			return 0, err
		}
		if err := a.saveIssued(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func roleOrAny(r Role) string {
	if r == "" {
		return "any role,"
	}
	return string(r)
}

// CreateAuthority makes a new authority and saves it in dir (0700). It
// refuses to overwrite one that is there.
func CreateAuthority(dir, name string) (*Authority, error) {
	if _, err := os.Stat(filepath.Join(dir, operatorSeedFile)); err == nil {
		return nil, fmt.Errorf("%s already holds an authority", dir)
	}
	a, err := NewAuthority(name)
	if err != nil {
		return nil, err
	}
	if err := a.save(dir); err != nil {
		return nil, err
	}
	return a, nil
}

// OpenAuthority loads the authority kept in dir.
func OpenAuthority(dir string) (*Authority, error) {
	a := &Authority{dir: dir}
	var err error
	if a.operator, err = readSeed(filepath.Join(dir, operatorSeedFile)); err != nil {
		return nil, err
	}
	if a.account, err = readSeed(filepath.Join(dir, accountSeedFile)); err != nil {
		return nil, err
	}
	if a.system, err = readSeed(filepath.Join(dir, systemSeedFile)); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{OperatorJWTFile, &a.OperatorJWT}, {AccountJWTFile, &a.AccountJWT}, {SystemJWTFile, &a.SystemJWT}} {
		data, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return nil, fmt.Errorf("open authority: %w", err)
		}
		*f.dst = string(data)
	}
	if a.Account, err = jwt.DecodeAccountClaims(a.AccountJWT); err != nil {
		return nil, fmt.Errorf("open authority: %s: %w", AccountJWTFile, err)
	}
	data, err := os.ReadFile(filepath.Join(dir, issuedFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("open authority: %w", err)
	default:
		if err := json.Unmarshal(data, &a.issued); err != nil {
			return nil, fmt.Errorf("open authority: %s: %w", issuedFile, err)
		}
	}
	return a, nil
}

// OpenOrCreateAuthority opens the authority in dir, making one first if
// there is none (atoll dev).
func OpenOrCreateAuthority(dir, name string) (*Authority, error) {
	if _, err := os.Stat(filepath.Join(dir, operatorSeedFile)); errors.Is(err, os.ErrNotExist) {
		return CreateAuthority(dir, name)
	}
	return OpenAuthority(dir)
}

func (a *Authority) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save authority: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("save authority: %w", err)
	}
	files := map[string][]byte{
		OperatorJWTFile: []byte(a.OperatorJWT),
		AccountJWTFile:  []byte(a.AccountJWT),
		SystemJWTFile:   []byte(a.SystemJWT),
	}
	for name, kp := range map[string]nkeys.KeyPair{operatorSeedFile: a.operator, accountSeedFile: a.account, systemSeedFile: a.system} {
		seed, err := kp.Seed()
		if err != nil {
			return fmt.Errorf("save authority: %w", err)
		}
		files[name] = seed
	}
	sys, err := a.systemCreds()
	if err != nil {
		return err
	}
	files[SystemCredsFile] = sys
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := writeSecret(filepath.Join(dir, n), files[n]); err != nil {
			return err
		}
	}
	a.dir = dir
	return a.saveIssued()
}

func (a *Authority) saveIssued() error {
	data, err := json.MarshalIndent(a.issued, "", "  ")
	if err != nil {
		return fmt.Errorf("save issued credentials: %w", err)
	}
	return writeSecret(filepath.Join(a.dir, issuedFile), append(data, '\n'))
}

func readSeed(path string) (nkeys.KeyPair, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open authority: %w", err)
	}
	kp, err := nkeys.FromSeed(data)
	if err != nil {
		return nil, fmt.Errorf("open authority: %s: %w", path, err)
	}
	return kp, nil
}

// WriteCreds writes a creds file (0600, its folder made 0700 if new).
func WriteCreds(path string, creds []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write creds: %w", err)
	}
	return writeSecret(path, creds)
}

// writeSecret writes data to path, readable by its owner only, replacing
// any earlier file atomically.
func writeSecret(path string, data []byte) error { return fsperm.WriteAtomic(path, data, 0o600) }

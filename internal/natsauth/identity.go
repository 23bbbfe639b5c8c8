package natsauth

import (
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

// Tags in a user JWT that say what the credential is for: a client reads
// them to pick its subjects and reply inbox. They carry no authority (the
// JWT's permissions do): a client that lies about them is only refused by
// the server.
const (
	roleTag   = "atoll-role:"
	prefixTag = "atoll-prefix:"
)

// Identity is who a creds file says its holder is.
type Identity struct {
	Role   Role
	Name   string
	Prefix string
	// JWT and Seed are the credential itself.
	JWT  string
	Seed []byte
}

// ReadCreds reads a creds file and the identity its JWT names.
func ReadCreds(path string) (Identity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Identity{}, fmt.Errorf("read nats credentials: %w", err)
	}
	id, err := ParseCreds(data)
	if err != nil {
		return Identity{}, fmt.Errorf("nats credentials %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return id, fmt.Errorf("nats credentials %s: mode %04o lets others read the key: chmod 600 it", path, fi.Mode().Perm())
	}
	return id, nil
}

// ParseCreds reads a creds file's content.
func ParseCreds(data []byte) (Identity, error) {
	token, err := jwt.ParseDecoratedJWT(data)
	if err != nil {
		return Identity{}, fmt.Errorf("no user JWT: %w", err)
	}
	kp, err := jwt.ParseDecoratedUserNKey(data)
	if err != nil {
		return Identity{}, fmt.Errorf("no user seed: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return Identity{}, fmt.Errorf("no user seed: %w", err)
	}
	uc, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return Identity{}, fmt.Errorf("decode user JWT: %w", err)
	}
	id := Identity{Name: uc.Name, JWT: token, Seed: seed}
	for _, t := range uc.Tags {
		switch {
		case strings.HasPrefix(t, roleTag):
			id.Role = Role(strings.TrimPrefix(t, roleTag))
		case strings.HasPrefix(t, prefixTag):
			id.Prefix = strings.TrimPrefix(t, prefixTag)
		}
	}
	if _, err := ParseRole(string(id.Role)); err != nil {
		return Identity{}, fmt.Errorf("not an atoll credential: %w", err)
	}
	return id, nil
}

// Options are the nats.go options that connect as id: its JWT and key, and
// its own reply inbox.
func (id Identity) Options() []nats.Option {
	return []nats.Option{
		nats.UserJWTAndSeed(id.JWT, string(id.Seed)),
		nats.CustomInboxPrefix(InboxPrefix(id.Role, id.Name)),
	}
}

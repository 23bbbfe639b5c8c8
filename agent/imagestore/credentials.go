package imagestore

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Credentials are registry logins in Docker's config.json format (what
// `docker login` writes and Mesos's --docker_config reads):
//
//	{"auths": {"registry.example.com": {"auth": "<base64 user:password>"},
//	           "https://index.docker.io/v1/": {"username": "u", "password": "p"}}}
//
// The file holds secrets: only the agent's user may read it. LoadCredentials
// refuses a file that another user owns or that group or others may read.
type Credentials map[string]authn.AuthConfig // by registry host

type dockerConfig struct {
	Auths map[string]struct {
		Auth     string `json:"auth"`
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"auths"`
}

// LoadCredentials reads a credentials file ("" means none).
func LoadCredentials(path string) (Credentials, error) {
	if path == "" {
		return Credentials{}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("registry credentials: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("registry credentials: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("registry credentials %s: mode %04o lets other users read it; chmod 600 it", path, perm)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("registry credentials %s: owned by uid %d, not the agent's uid %d", path, sys.Uid, os.Geteuid())
	}
	var dc dockerConfig
	if err := json.NewDecoder(f).Decode(&dc); err != nil {
		return nil, fmt.Errorf("registry credentials %s: %w", path, err)
	}
	creds := Credentials{}
	for key, a := range dc.Auths {
		c := authn.AuthConfig{Username: a.Username, Password: a.Password}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("registry credentials %s: %q: auth is not base64: %w", path, key, err)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("registry credentials %s: %q: auth is not user:password", path, key)
			}
			c.Username, c.Password = user, pass
		}
		creds[registryKey(key)] = c
	}
	return creds, nil
}

// registryKey turns a config.json key ("https://index.docker.io/v1/",
// "docker.io", "reg:5000") into the registry host go-containerregistry
// names ("index.docker.io", "reg:5000").
func registryKey(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key, _, _ = strings.Cut(key, "/")
	if key == "docker.io" || key == "registry-1.docker.io" {
		return name.DefaultRegistry
	}
	return key
}

// Resolve implements authn.Keychain: a registry with no entry is
// anonymous.
func (c Credentials) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a, ok := c[r.RegistryStr()]; ok {
		return authn.FromConfig(a), nil
	}
	return authn.Anonymous, nil
}

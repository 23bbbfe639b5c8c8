package imagestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Options configure a Store.
type Options struct {
	// Root is the store's folder (created 0700).
	Root string
	// CredentialsFile is a Docker config.json with registry logins
	// (see Credentials); read on every pull, so a rotated password
	// needs no agent restart. "" means anonymous pulls only.
	CredentialsFile string
	// InsecureRegistries ("host:port") may be reached over plain HTTP or
	// HTTPS with an unverified certificate, as dockerd's
	// --insecure-registries. Loopback registries always may.
	InsecureRegistries []string
	// PullTimeout bounds a pull whose context has no deadline; 0 means
	// 10 minutes.
	PullTimeout time.Duration
	// Transport is the HTTP transport to registries; nil means a default
	// with dial, TLS handshake and response header timeouts.
	Transport *http.Transport
}

// Store is an image store on the agent's disk. Its methods are safe for
// concurrent use; one Store per root folder and process.
type Store struct {
	root        string
	credentials string
	transport   http.RoundTripper
	pullTimeout time.Duration

	// mu guards inflight and serialises GC with the steps that make a
	// layer or image referenced (recording an image, taking a lease).
	mu       sync.Mutex
	inflight map[string]*flight // layer fetches under way, by diff id

	layersFetched atomic.Int64
}

// flight is one layer download that concurrent pulls wait on.
type flight struct {
	done chan struct{}
	err  error
}

// Image is a pulled image.
type Image struct {
	// Reference is the reference as normalised when pulled
	// ("index.docker.io/library/nginx:latest").
	Reference string `json:"reference"`
	// Digest is the image manifest's digest ("sha256:...").
	Digest string `json:"digest"`
	// Config is the image's config: Entrypoint, Cmd, Env, WorkingDir,
	// User, ExposedPorts...
	Config v1.Config `json:"config"`
	// Layers are the layers' diff ids, the bottom one first.
	Layers []string `json:"layers"`
}

// Open opens (creating it if needed) the store at o.Root.
func Open(o Options) (*Store, error) {
	if o.Root == "" {
		return nil, errors.New("image store: no root folder")
	}
	for _, d := range []string{"", "layers/sha256", "images", "refs", "leases", "tmp"} {
		if err := os.MkdirAll(filepath.Join(o.Root, d), 0o700); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	if err := os.Chmod(o.Root, 0o700); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	// Downloads cut short by a crash are worth nothing now.
	if ents, err := os.ReadDir(filepath.Join(o.Root, "tmp")); err == nil {
		for _, e := range ents {
			os.RemoveAll(filepath.Join(o.Root, "tmp", e.Name()))
		}
	}
	// Fail at start, not at the first pull, on an unreadable or
	// world-readable credentials file.
	if _, err := LoadCredentials(o.CredentialsFile); err != nil {
		return nil, err
	}
	timeout := o.PullTimeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	return &Store{
		root:        o.Root,
		credentials: o.CredentialsFile,
		transport:   newRegistryTransport(o.Transport, o.InsecureRegistries),
		pullTimeout: timeout,
		inflight:    map[string]*flight{},
	}, nil
}

// LayersFetched counts the layer blobs this Store has downloaded.
func (s *Store) LayersFetched() int64 { return s.layersFetched.Load() }

// PullOptions change how Pull gets an image.
type PullOptions struct {
	// Force asks the registry even when the cache holds the image
	// (Marathon's forcePullImage); layers already cached are not
	// downloaded again, as docker pull skips them.
	Force bool
	// Username and Password are the app's own registry login
	// (Marathon's container.docker.credential: principal and secret);
	// they take the place of the agent's credentials file for this pull.
	Username, Password string
}

// Pull returns the image ref names, from the cache when it holds it and
// o.Force is false; otherwise it asks the registry for the manifest and
// downloads the layers the cache lacks.
func (s *Store) Pull(ctx context.Context, ref string, o PullOptions) (*Image, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if !o.Force {
		if img, err := s.cached(r); err == nil {
			return img, nil
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.pullTimeout)
		defer cancel()
	}
	img, err := s.pull(ctx, r, o)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r.Name(), explain(r, err))
	}
	return img, nil
}

// Lookup returns a cached image by reference without any network access.
func (s *Store) Lookup(ref string) (*Image, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	return s.cached(r)
}

func (s *Store) pull(ctx context.Context, r name.Reference, o PullOptions) (*Image, error) {
	var keychain authn.Keychain
	if o.Username != "" {
		keychain = Credentials{r.Context().RegistryStr(): authn.AuthConfig{Username: o.Username, Password: o.Password}}
	} else {
		creds, err := LoadCredentials(s.credentials)
		if err != nil {
			return nil, err
		}
		keychain = creds
	}
	desc, err := remote.Get(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain),
		remote.WithTransport(s.transport),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
	if err != nil {
		return nil, err
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	if cf.OS != "" && cf.OS != "linux" {
		return nil, fmt.Errorf("image is for %s, not linux", cf.OS)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("manifest has %d layers, config %d diff ids", len(layers), len(cf.RootFS.DiffIDs))
	}
	ids := make([]string, len(layers))
	for i, l := range layers {
		ids[i] = cf.RootFS.DiffIDs[i].String()
		if err := s.ensureLayer(ctx, l, cf.RootFS.DiffIDs[i]); err != nil {
			return nil, err
		}
	}
	rec := &Image{Reference: r.Name(), Digest: digest.String(), Config: cf.Config, Layers: ids}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeJSON(s.imagePath(rec.Digest), rec); err != nil {
		return nil, err
	}
	if err := writeJSON(s.refPath(r), refEntry{Reference: r.Name(), Digest: rec.Digest}); err != nil {
		return nil, err
	}
	return rec, nil
}

// refEntry records which image a reference named when last pulled.
type refEntry struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
}

// cached finds the image r names on disk, with every layer present, and
// marks it used now (GC measures its delay from the last use).
func (s *Store) cached(r name.Reference) (*Image, error) {
	var e refEntry
	if err := readJSON(s.refPath(r), &e); err != nil {
		return nil, fmt.Errorf("image %s not in the cache", r.Name())
	}
	var img Image
	if err := readJSON(s.imagePath(e.Digest), &img); err != nil {
		return nil, fmt.Errorf("image %s not in the cache", r.Name())
	}
	for _, id := range img.Layers {
		if _, err := os.Stat(s.layerDir(id)); err != nil {
			return nil, fmt.Errorf("image %s: layer %s missing from the cache", r.Name(), id)
		}
	}
	now := time.Now()
	os.Chtimes(s.imagePath(e.Digest), now, now)
	return &img, nil
}

func (s *Store) refPath(r name.Reference) string {
	sum := sha256.Sum256([]byte(r.Name()))
	return filepath.Join(s.root, "refs", hex.EncodeToString(sum[:])+".json")
}

func (s *Store) imagePath(digest string) string {
	return filepath.Join(s.root, "images", strings.TrimPrefix(digest, "sha256:")+".json")
}

func (s *Store) layerDir(diffID string) string {
	return filepath.Join(s.root, "layers", "sha256", strings.TrimPrefix(diffID, "sha256:"))
}

// explain turns go-containerregistry's errors into what an operator needs
// to read in a task's message.
func explain(r name.Reference, err error) error {
	reg := r.Context().RegistryStr()
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch {
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
			return fmt.Errorf("registry %s refused access (check the agent's registry credentials): %w", reg, err)
		case terr.StatusCode == http.StatusNotFound:
			return fmt.Errorf("not found in registry %s: %w", reg, err)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("registry %s did not answer in time: %w", reg, err)
	}
	var nerr net.Error
	if errors.As(err, &nerr) {
		if nerr.Timeout() {
			return fmt.Errorf("registry %s did not answer in time: %w", reg, err)
		}
		return fmt.Errorf("registry %s unreachable: %w", reg, err)
	}
	return err
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

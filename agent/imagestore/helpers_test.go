package imagestore

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/atollhq/atoll/internal/imagetest"
	"github.com/atollhq/atoll/internal/registrytest"
)

// requireRoot: overlay mounts, whiteout devices and chown need root.
// Under CI=true (where tests run as root) not being root fails the run.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("the image store tests need root")
	}
	t.Skip("the image store tests need root")
}

// requests counts the HTTP requests the store makes, by kind.
type requests struct {
	mu    sync.Mutex
	blobs int
	all   int
}

func (c *requests) counting(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		c.mu.Lock()
		c.all++
		if strings.Contains(r.URL.Path, "/blobs/") {
			c.blobs++
		}
		c.mu.Unlock()
		return next.RoundTrip(r)
	})
}

func (c *requests) get() (blobs, all int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blobs, c.all
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// openStore opens a store in a temporary folder whose registry requests
// are counted.
func openStore(t *testing.T, o Options) (*Store, *requests) {
	t.Helper()
	if o.Root == "" {
		o.Root = t.TempDir()
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	c := &requests{}
	s.transport = c.counting(s.transport)
	return s, c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// pushImage builds an image of the given layers (files each) and config
// and pushes it as ref.
func pushImage(t *testing.T, ref string, cfg v1.Config, user, pass string, layers ...[]imagetest.File) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for _, files := range layers {
		l, err := imagetest.Layer(files...)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	img, err := imagetest.Image(cfg, ls...)
	if err != nil {
		t.Fatal(err)
	}
	if err := imagetest.Push(ctxFor(t, 30*time.Second), ref, img, user, pass); err != nil {
		t.Fatal(err)
	}
	return img
}

func startRegistry(t *testing.T, o registrytest.Options) *registrytest.Registry {
	t.Helper()
	return registrytest.Start(t, o)
}

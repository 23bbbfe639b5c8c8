package imagestore

import (
	"fmt"
	"net"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// ParseReference reads an image reference as docker does: "nginx" is
// index.docker.io/library/nginx:latest, "127.0.0.1:5000/echo:1" a tag
// of a local registry, "repo@sha256:..." a digest.
func ParseReference(ref string) (name.Reference, error) {
	if strings.TrimSpace(ref) != ref || ref == "" {
		return nil, fmt.Errorf("invalid image reference %q", ref)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return r, nil
}

// plainHTTPAllowed reports whether a registry may be spoken to over plain
// HTTP: loopback registries always (as dockerd), others only when the
// operator listed them in --insecure-registries.
func plainHTTPAllowed(registry string, insecure map[string]bool) bool {
	if insecure[registry] {
		return true
	}
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

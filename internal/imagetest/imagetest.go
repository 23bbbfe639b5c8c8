// Package imagetest builds container images inside tests, with
// go-containerregistry, and pushes them to a registry on loopback
// (internal/registrytest): nothing is downloaded. An image is a few layers
// of files given by the test (a static atoll binary, Debian's static
// busybox as /bin/sh) and an image config (Entrypoint, Cmd, Env, ...).
package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one entry of a layer. Exactly one of Body, Src, Link applies,
// or none for a directory (Mode has os.ModeDir) or an empty file.
type File struct {
	Path string // inside the image, e.g. "bin/sh"
	Mode os.FileMode
	Body []byte
	Src  string // a host file whose bytes are copied
	Link string // symlink target (Mode gets os.ModeSymlink)
	UID  int
	GID  int
}

// Dir is a directory entry.
func Dir(path string, perm os.FileMode) File { return File{Path: path, Mode: os.ModeDir | perm} }

// Whiteout deletes path (a file or a whole directory) of the layers below,
// as docker's ".wh." files do.
func Whiteout(path string) File {
	return File{Path: filepath.Join(filepath.Dir(path), ".wh."+filepath.Base(path)), Mode: 0o644}
}

// Base is a minimal root: /etc/passwd with root and nobody (65534),
// /etc/group, a sticky /tmp.
func Base() []File {
	return []File{
		Dir("etc", 0o755),
		{Path: "etc/passwd", Mode: 0o644, Body: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "etc/group", Mode: 0o644, Body: []byte("root:x:0:\nnogroup:x:65534:\n")},
		Dir("tmp", os.ModeSticky|0o777),
		Dir("bin", 0o755),
	}
}

// BusyboxPath is Debian's busybox-static binary.
const BusyboxPath = "/bin/busybox"

// Busybox is /bin/busybox (from the host's busybox-static) with /bin/sh
// and the few applets tests use linked to it. It fails when the host's
// busybox is not static: a dynamic one would not run in an image without
// a libc.
func Busybox() ([]File, error) {
	f, err := elf.Open(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("imagetest: %s: %w (apt-get install busybox-static)", BusyboxPath, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("imagetest: %s is dynamically linked (apt-get install busybox-static)", BusyboxPath)
		}
	}
	files := []File{{Path: "bin/busybox", Mode: 0o755, Src: BusyboxPath}}
	for _, applet := range []string{"sh", "cat", "echo", "dd", "sleep", "id", "pwd", "ls", "env", "head"} {
		files = append(files, File{Path: "bin/" + applet, Link: "busybox"})
	}
	return files, nil
}

// AtollBinary builds a static atoll binary (no cgo: it runs in an image
// without a libc) once per process and returns its path. The binary lives
// in the user's cache folder, one per checkout, so that a later run whose
// sources did not change skips the link (go build leaves an up-to-date
// target alone); a cold build compiles every package again for
// CGO_ENABLED=0 and takes minutes on a loaded machine.
func AtollBinary() (string, error) {
	atollOnce.Do(func() { atollPath, atollErr = buildAtoll() })
	return atollPath, atollErr
}

var (
	atollOnce sync.Once
	atollPath string
	atollErr  error
)

func buildAtoll() (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("imagetest: go env GOMOD: %w", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("imagetest: %w", err)
	}
	sum := sha256.Sum256(bytes.TrimSpace(gomod))
	dir := filepath.Join(cache, "atoll-imagetest", hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("imagetest: %w", err)
	}
	out := filepath.Join(dir, "atoll")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "github.com/atollhq/atoll/cmd/atoll")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("imagetest: build atoll: %w: %s", err, b)
	}
	return out, nil
}

// Layer makes a gzipped layer of files, in order.
func Layer(files ...File) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A fixed time: the same files make the same digest.
	mtime := time.Unix(1700000000, 0)
	for _, f := range files {
		h := &tar.Header{Name: f.Path, Mode: int64(f.Mode.Perm()), Uid: f.UID, Gid: f.GID, ModTime: mtime, Format: tar.FormatPAX}
		if f.Mode&os.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		if f.Mode&os.ModeSetuid != 0 {
			h.Mode |= 0o4000
		}
		body := f.Body
		switch {
		case f.Link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Link, 0o777
		case f.Mode.IsDir():
			h.Typeflag = tar.TypeDir
		default:
			h.Typeflag = tar.TypeReg
			if f.Src != "" {
				b, err := os.ReadFile(f.Src)
				if err != nil {
					return nil, fmt.Errorf("imagetest: %w", err)
				}
				body = b
			}
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("imagetest: %s: %w", f.Path, err)
		}
		if _, err := tw.Write(body); err != nil {
			return nil, fmt.Errorf("imagetest: %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	// Compressed here, once and fast: go-containerregistry would gzip an
	// uncompressed tar again for the digest and for every push, slow for
	// a 29 MB binary in a race-instrumented test.
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// Image stacks layers (the first at the bottom) under cfg, for linux on
// this machine's architecture.
func Image(cfg v1.Config, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, fmt.Errorf("imagetest: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	return mutate.ConfigFile(img, cf)
}

// Push writes img to ref ("127.0.0.1:port/name:tag") over plain HTTP, with
// user and password when user is not empty.
func Push(ctx context.Context, ref string, img v1.Image, user, password string) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return fmt.Errorf("imagetest: %w", err)
	}
	var auth authn.Authenticator = authn.Anonymous
	if user != "" {
		auth = &authn.Basic{Username: user, Password: password}
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuth(auth)); err != nil {
		return fmt.Errorf("imagetest: push %s: %w", ref, err)
	}
	return nil
}

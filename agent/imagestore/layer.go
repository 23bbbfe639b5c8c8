package imagestore

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
)

// ensureLayer makes the layer with diffID present, unpacked, in the
// cache. Concurrent callers for one layer share one download; a caller
// whose leader failed for its own reason (its context ended) tries again.
func (s *Store) ensureLayer(ctx context.Context, l v1.Layer, diffID v1.Hash) error {
	id := diffID.String()
	for {
		if _, err := os.Stat(s.layerDir(id)); err == nil {
			return nil
		}
		s.mu.Lock()
		f, waiting := s.inflight[id]
		if !waiting {
			f = &flight{done: make(chan struct{})}
			s.inflight[id] = f
		}
		s.mu.Unlock()
		if !waiting {
			f.err = s.fetchLayer(ctx, l, diffID)
			s.mu.Lock()
			delete(s.inflight, id)
			s.mu.Unlock()
			close(f.done)
			return f.err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if f.err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return f.err
		}
		// The leader's error may have been its own context: try
		// again as the leader, unless the layer itself is bad.
		if _, ok := f.err.(*verifyError); ok {
			return f.err
		}
	}
}

// verifyError is a layer whose bytes are not what the manifest or the
// image config promised.
type verifyError struct{ what, want, got string }

func (e *verifyError) Error() string {
	return fmt.Sprintf("layer %s mismatch: want %s, got %s", e.what, e.want, e.got)
}

// fetchLayer downloads one layer blob, checks its digest and its diff id
// while unpacking it into a temporary folder, and moves that folder into
// the cache only when both match.
func (s *Store) fetchLayer(ctx context.Context, l v1.Layer, diffID v1.Hash) error {
	digest, err := l.Digest()
	if err != nil {
		return err
	}
	if digest.Algorithm != "sha256" || diffID.Algorithm != "sha256" {
		return fmt.Errorf("layer %s: only sha256 digests are supported", digest)
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "layer-")
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	defer os.RemoveAll(tmp)
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", digest, err)
	}
	defer rc.Close()
	s.layersFetched.Add(1)
	// The body is read in this goroutine; a context that ends closes it
	// so that a stalled registry cannot hold the read forever.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()

	blobHash := sha256.New()
	tar, diffHash, closeTar, err := decompress(io.TeeReader(rc, blobHash))
	if err != nil {
		return fmt.Errorf("layer %s: %w", digest, err)
	}
	defer closeTar()
	fs := filepath.Join(tmp, "fs")
	if err := unpackLayer(tar, fs); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("layer %s: %w", digest, ctx.Err())
		}
		return fmt.Errorf("layer %s: unpack: %w", digest, err)
	}
	// Read what the tar reader left (padding, the compressor's trailer):
	// both digests cover every byte.
	if _, err := io.Copy(io.Discard, tar); err != nil {
		return fmt.Errorf("layer %s: %w", digest, err)
	}
	if got := hex.EncodeToString(blobHash.Sum(nil)); got != digest.Hex {
		return &verifyError{"digest", digest.String(), "sha256:" + got}
	}
	if got := hex.EncodeToString(diffHash.Sum(nil)); got != diffID.Hex {
		return &verifyError{"diff id", diffID.String(), "sha256:" + got}
	}
	if err := os.Rename(fs, s.layerDir(diffID.String())); err != nil && !os.IsExist(err) {
		return fmt.Errorf("image store: %w", err)
	}
	return nil
}

// decompress detects gzip, zstd or a plain tar by its magic bytes and
// returns the tar stream, hashed as it is read.
func decompress(r io.Reader) (io.Reader, hash.Hash, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	h := sha256.New()
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, nil, err
		}
		return io.TeeReader(zr, h), h, func() { zr.Close() }, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, nil, err
		}
		return io.TeeReader(zr, h), h, zr.Close, nil
	default:
		return io.TeeReader(br, h), h, func() {}, nil
	}
}

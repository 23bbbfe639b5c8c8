package master

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
)

// Records larger than zkCompressAbove are stored gzipped, as Marathon's
// --zk_compression (on by default, above 64 KB) stores its nodes: a group
// change of thousands of apps records their original definitions in one
// deployment record, which as JSON passes the ~1 MB ZooKeeper takes in one
// request, and the change would be refused. Readers tell the two apart by
// gzip's magic bytes: a JSON record begins with '{'. What is cached
// (zkcache.go) and decoded is always the JSON.
const zkCompressAbove = 64 << 10

// zkEncodeRecord is what a record's znode holds for its JSON data.
func zkEncodeRecord(data []byte) ([]byte, error) {
	if len(data) <= zkCompressAbove {
		return data, nil
	}
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, fmt.Errorf("compress record: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compress record: %w", err)
	}
	return b.Bytes(), nil
}

// zkDecodeRecord is the JSON data of a record's znode.
func zkDecodeRecord(stored []byte) ([]byte, error) {
	if len(stored) < 2 || stored[0] != 0x1f || stored[1] != 0x8b {
		return stored, nil
	}
	r, err := gzip.NewReader(bytes.NewReader(stored))
	if err != nil {
		return nil, fmt.Errorf("decompress record: %w", err)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decompress record: %w", err)
	}
	return data, nil
}

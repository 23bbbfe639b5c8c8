package imagestore

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name, link string
	typ        byte
	body       string
}

func tarOf(t *testing.T, entries ...entry) *bytes.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return bytes.NewReader(buf.Bytes())
}

func TestUnpackNeverWritesOutsideTheLayer(t *testing.T) {
	requireRoot(t)
	outside := t.TempDir()
	for _, c := range []struct {
		name    string
		entries []entry
		wantErr string
	}{
		{"dot-dot names stay inside", []entry{{name: "../../escape", typ: tar.TypeReg, body: "x"}}, ""},
		{"write through a symlinked folder", []entry{
			{name: "evil", link: outside, typ: tar.TypeSymlink},
			{name: "evil/planted", typ: tar.TypeReg, body: "x"},
		}, "symlink"},
		{"hard link to a host file", []entry{{name: "pw", link: "../../../../etc/passwd", typ: tar.TypeLink}}, "not a file of this layer"},
	} {
		dir := filepath.Join(t.TempDir(), "layer")
		err := unpackLayer(tarOf(t, c.entries...), dir)
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: %v, want error %q", c.name, err, c.wantErr)
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("%s: wrote %v outside the layer", c.name, ents)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); err == nil {
			t.Fatalf("%s: ../ escaped", c.name)
		}
	}
}

func TestCredentialsFileInDockersFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte("bob:pa:ss"))
	os.WriteFile(path, []byte(`{"auths": {
		"https://index.docker.io/v1/": {"auth": "`+auth+`"},
		"reg.example.com:5000": {"username": "u", "password": "p"}}}`), 0o600)
	creds, err := LoadCredentials(path)
	if err != nil {
		t.Fatal(err)
	}
	if c := creds["index.docker.io"]; c.Username != "bob" || c.Password != "pa:ss" {
		t.Errorf("Docker Hub login %+v", c)
	}
	if c := creds["reg.example.com:5000"]; c.Username != "u" || c.Password != "p" {
		t.Errorf("private registry login %+v", c)
	}
	os.WriteFile(path, []byte(`{"auths": {"x": {"auth": "%%%"}}}`), 0o600)
	if _, err := LoadCredentials(path); err == nil || !strings.Contains(err.Error(), "base64") {
		t.Errorf("bad auth: %v", err)
	}
}

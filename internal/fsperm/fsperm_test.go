package fsperm

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func TestDir(t *testing.T) {
	for _, tt := range []struct {
		name      string
		existing  fs.FileMode // 0: does not exist
		perm      fs.FileMode
		want      fs.FileMode
		tightened bool
	}{
		{"new", 0, 0o700, 0o700, false},
		{"open to all", 0o755, 0o700, 0o700, true},
		{"group may read", 0o750, 0o700, 0o700, true},
		{"already private", 0o700, 0o700, 0o700, false},
		{"stricter than asked stays", 0o500, 0o700, 0o500, false},
		{"traversable: listing goes, nothing is added", 0o750, 0o711, 0o710, true},
		{"traversable from open", 0o755, 0o711, 0o711, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "a", "b")
			if tt.existing != 0 {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			var logs bytes.Buffer
			if err := Dir(dir, tt.perm, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
				t.Fatal(err)
			}
			if got := mode(t, dir); got != tt.want {
				t.Errorf("mode %s, want %s", got, tt.want)
			}
			if tt.existing == 0 {
				if got := mode(t, filepath.Dir(dir)); got != tt.perm {
					t.Errorf("created parent has mode %s, want %s", got, tt.perm)
				}
			}
			if said := strings.Contains(logs.String(), "tightened"); said != tt.tightened {
				t.Errorf("logged a tightening: %v, want %v (log: %s)", said, tt.tightened, logs.String())
			}
		})
	}
}

func TestDirRefusesSharedFolders(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := Dir(dir, 0o700, nil); err == nil || !strings.Contains(err.Error(), "shared") {
		t.Fatalf("Dir on a sticky folder: %v, want it refused", err)
	}
	if got := mode(t, dir); got != 0o777 {
		t.Fatalf("shared folder's mode changed to %s", got)
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Dir(file, 0o700, nil); err == nil {
		t.Fatal("Dir on a file: no error")
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	if err := File(filepath.Join(dir, "missing"), 0o600, nil); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	path := filepath.Join(dir, "state.json")
	if err := os.WriteFile(path, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if err := File(path, 0o600, nil); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, path); got != 0o600 {
		t.Fatalf("mode %s, want 0600", got)
	}
}

package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The master's data dir fills up: every app whose POST was acknowledged
// (201) is there after space comes back and the master restarts, and the
// one whose POST failed is not. The data dir is a real 4 MiB tmpfs, so
// the full disk is the kernel's own ENOSPC, mid-write.
func TestMasterStoreSurvivesFullDisk(t *testing.T) {
	c := startCluster(t, clusterOptions{})
	dataDir := filepath.Join(c.dir, "master")
	c.signal(c.master, syscall.SIGTERM)
	mountSmallTmpfs(t, dataDir)
	// Stop the master before the tmpfs goes (cleanups run last first).
	t.Cleanup(func() { c.signal(c.master, syscall.SIGTERM) })
	restart := func() {
		c.startMaster()
		c.waitFor(15*time.Second, "the master leads", func() (bool, string) {
			code, body := c.do("GET", "/v2/apps", nil)
			return code == 200, fmt.Sprintf("GET /v2/apps: %d %s", code, body)
		})
	}
	restart()

	// The store is private, the tmpfs's looser root tightened.
	for path, want := range map[string]os.FileMode{dataDir: 0o700, filepath.Join(dataDir, "events.log"): 0o600} {
		if info, err := os.Stat(path); err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: mode %v (err %v), want %s", path, info.Mode().Perm(), err, want)
		}
	}

	// Fill all but about 640 KiB: room for several apps of ~64 KiB each.
	filler := filepath.Join(dataDir, "filler")
	fill(t, filler, free(t, dataDir)-640<<10)

	blob := strings.Repeat("x", 64<<10) // env and labels make each event big
	app := func(id string) map[string]any {
		return map[string]any{
			"id": id, "cmd": "sleep 1000", "instances": 0,
			"env":    map[string]string{"BLOB": blob},
			"labels": map[string]string{"NOTE": blob[:1024]},
		}
	}
	var acked []string
	failed := ""
	for i := range 40 {
		id := fmt.Sprintf("/fill-%d", i)
		code, body := c.do("POST", "/v2/apps", app(id))
		if code == 201 {
			acked = append(acked, id)
			continue
		}
		if code < 500 {
			t.Fatalf("POST %s: status %d, want 201 or a 5xx once the disk is full: %s", id, code, body)
		}
		t.Logf("POST %s on a full disk: %d %s", id, code, body)
		failed = id
		break
	}
	if failed == "" || len(acked) == 0 {
		t.Fatalf("%d POSTs acknowledged, failed %q: want some acknowledged, then one refused for lack of space", len(acked), failed)
	}
	if code, _ := c.do("GET", "/v2/apps"+failed, nil); code != 404 {
		t.Errorf("GET %s after its POST failed: %d, want 404", failed, code)
	}
	// Still full: still refused, and nothing half-done stays behind.
	if code, _ := c.do("POST", "/v2/apps", app("/still-full")); code < 500 {
		t.Errorf("POST on a still-full disk: %d, want a 5xx", code)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.mustDo("POST", "/v2/apps", app("/after"), 201, nil)
	acked = append(acked, "/after")

	c.signal(c.master, syscall.SIGTERM)
	restart()
	for _, id := range acked {
		var got struct {
			App struct {
				Env map[string]string `json:"env"`
			} `json:"app"`
		}
		code, body := c.do("GET", "/v2/apps"+id, nil)
		if code != 200 {
			t.Errorf("acknowledged app %s after the restart: %d %s", id, code, body)
			continue
		}
		if err := json.Unmarshal(body, &got); err != nil || got.App.Env["BLOB"] != blob {
			t.Errorf("acknowledged app %s came back changed (err %v, env BLOB %d bytes)", id, err, len(got.App.Env["BLOB"]))
		}
	}
	for _, id := range []string{failed, "/still-full"} {
		if code, _ := c.do("GET", "/v2/apps"+id, nil); code != 404 {
			t.Errorf("app %s, whose POST failed, after the restart: %d, want 404", id, code)
		}
	}
	if !t.Failed() {
		t.Logf("%d apps acknowledged (%d before the disk was full, 1 after space came back), all back after the restart", len(acked), len(acked)-1)
	}
}

// mountSmallTmpfs mounts a 4 MiB tmpfs on dir (root only) for the test.
func mountSmallTmpfs(t *testing.T, dir string) {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if os.Geteuid() != 0 {
		if ci {
			t.Fatal("the full-disk test mounts a tmpfs: under CI=true it must run as root")
		}
		t.Skip("the full-disk test mounts a tmpfs, which needs root")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// mode=0755: a data dir looser than the master wants, to be tightened.
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m,mode=0755"); err != nil {
		if ci {
			t.Fatalf("mount a tmpfs on %s: %v", dir, err)
		}
		t.Skipf("cannot mount a tmpfs here (%v)", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// free is how many bytes the file system of dir has left.
func free(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fill writes n bytes (or as many as fit) to a new file at path.
func fill(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for n > 0 {
		w, err := f.Write(chunk[:min(int64(len(chunk)), n)])
		n -= int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

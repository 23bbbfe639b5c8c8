package imagestore

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/atollhq/atoll/internal/imagetest"
	"github.com/atollhq/atoll/internal/registrytest"
)

func TestDockerHubNamesAreNormalisedAsDockerDoes(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                   "index.docker.io/library/nginx:latest",
		"nginx:1.25":              "index.docker.io/library/nginx:1.25",
		"mesosphere/marathon:v1":  "index.docker.io/mesosphere/marathon:v1",
		"docker.io/library/redis": "index.docker.io/library/redis:latest",
		"127.0.0.1:5000/echo":     "127.0.0.1:5000/echo:latest",
		"reg.example.com/a/b@sha256:" + strings.Repeat("ab", 32): "reg.example.com/a/b@sha256:" + strings.Repeat("ab", 32),
	} {
		r, err := ParseReference(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if r.Name() != want {
			t.Errorf("%q -> %q, want %q", in, r.Name(), want)
		}
	}
	for _, bad := range []string{"", "BAD//ref", " nginx", "nginx:", "a@sha256:12"} {
		if _, err := ParseReference(bad); err == nil || !strings.Contains(err.Error(), "invalid image reference") {
			t.Errorf("%q: error %v, want invalid image reference", bad, err)
		}
	}
}

func TestSecondPullComesFromTheCacheAndForcePullFetchesNoKnownLayer(t *testing.T) {
	requireRoot(t)
	reg := startRegistry(t, registrytest.Options{})
	bb, err := imagetest.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	cfg := v1.Config{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"}, Env: []string{"PATH=/bin", "A=1"}, WorkingDir: "/tmp", User: "nobody"}
	ref := reg.Host + "/bb:1"
	pushImage(t, ref, cfg, "", "", append(imagetest.Base(), bb...), []imagetest.File{{Path: "hello.txt", Mode: 0o644, Body: []byte("hello")}})

	s, reqs := openStore(t, Options{})
	img, err := s.Pull(ctxFor(t, time.Minute), ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.Config.Entrypoint, cfg.Entrypoint) || img.Config.User != "nobody" || img.Config.WorkingDir != "/tmp" || len(img.Layers) != 2 {
		t.Fatalf("pulled %+v", img)
	}
	blobs, afterFirst := reqs.get()
	if blobs != 3 { // config + 2 layers
		t.Errorf("first pull fetched %d blobs, want 3 (config and two layers)", blobs)
	}
	if n := s.LayersFetched(); n != 2 {
		t.Errorf("first pull downloaded %d layers, want 2", n)
	}

	again, err := s.Pull(ctxFor(t, time.Minute), ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != img.Digest {
		t.Errorf("cached digest %s, want %s", again.Digest, img.Digest)
	}
	if _, all := reqs.get(); all != afterFirst {
		t.Errorf("second pull of a cached image made %d registry requests, want none", all-afterFirst)
	}

	if _, err := s.Pull(ctxFor(t, time.Minute), ref, PullOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	blobsForced, all := reqs.get()
	if all == afterFirst {
		t.Error("forcePullImage did not ask the registry")
	}
	// The manifest and the small config again; no layer blob.
	if blobsForced-blobs != 1 || s.LayersFetched() != 2 {
		t.Errorf("forced pull fetched %d blobs (want only the config) and %d layer downloads in all (want 2)", blobsForced-blobs, s.LayersFetched())
	}
}

func TestConcurrentPullsDownloadEachLayerOnce(t *testing.T) {
	requireRoot(t)
	reg := startRegistry(t, registrytest.Options{})
	ref := reg.Host + "/big:1"
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = byte(i * 7 % 251)
	}
	pushImage(t, ref, v1.Config{Cmd: []string{"/x"}}, "", "",
		[]imagetest.File{{Path: "big1", Mode: 0o644, Body: big}},
		[]imagetest.File{{Path: "big2", Mode: 0o644, Body: big[1:]}})
	s, _ := openStore(t, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			_, err := s.Pull(ctxFor(t, time.Minute), ref, PullOptions{Force: true})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.LayersFetched(); n != 2 {
		t.Errorf("6 concurrent pulls of a 2-layer image downloaded %d layers, want 2", n)
	}
}

func TestRootfsIsAnOverlayWithWhiteoutsApplied(t *testing.T) {
	requireRoot(t)
	reg := startRegistry(t, registrytest.Options{})
	ref := reg.Host + "/wh:1"
	pushImage(t, ref, v1.Config{Cmd: []string{"/x"}}, "", "",
		append(imagetest.Base(),
			imagetest.Dir("data", 0o755),
			imagetest.File{Path: "data/old", Mode: 0o644, Body: []byte("old")},
			imagetest.File{Path: "gone.txt", Mode: 0o644, Body: []byte("bye")},
			imagetest.File{Path: "bin/suid", Mode: os.ModeSetuid | 0o755, Body: []byte("x"), UID: 0},
			imagetest.File{Path: "owned", Mode: 0o600, Body: []byte("x"), UID: 65534, GID: 65534},
		),
		[]imagetest.File{
			imagetest.Whiteout("gone.txt"),
			imagetest.Dir("data", 0o755),
			{Path: "data/.wh..wh..opq", Mode: 0o644},
			{Path: "data/new", Mode: 0o644, Body: []byte("new")},
		})
	s, _ := openStore(t, Options{})
	img, err := s.Pull(ctxFor(t, time.Minute), ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root, err := s.Rootfs("task1", img, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ReleaseRootfs("task1", dir) })
	if _, err := os.Stat(filepath.Join(root, "gone.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("whited-out gone.txt: stat error %v, want not exist", err)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "data"))
	if len(ents) != 1 || ents[0].Name() != "new" {
		t.Errorf("opaque data/ holds %v, want only new", ents)
	}
	fi, err := os.Stat(filepath.Join(root, "tmp"))
	if err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("/tmp mode %v (%v), want sticky 0777", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(root, "bin/suid")); err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("bin/suid lost setuid: %v %v", fi.Mode(), err)
	}
	if st, err := os.Stat(filepath.Join(root, "owned")); err != nil {
		t.Fatal(err)
	} else if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 65534 {
		t.Errorf("owned: uid %d, want 65534", uid)
	}
	// A task's writes stay its own: a second rootfs of the image does
	// not see them.
	if err := os.WriteFile(filepath.Join(root, "data/new"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir2 := t.TempDir()
	root2, err := s.Rootfs("task2", img, dir2)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root2, "data/new")); string(b) != "new" {
		t.Errorf("task2 sees %q in data/new, want the image's %q", b, "new")
	}
	if err := s.ReleaseRootfs("task2", dir2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir2, "rootfs")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("released rootfs still there: %v", err)
	}
	if again, err := s.Rootfs("task1", img, dir); err != nil || again != root {
		t.Errorf("Rootfs again for a mounted task = %q, %v; want %q (adopt)", again, err, root)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "data/new")); string(b) != "changed" {
		t.Errorf("adopted rootfs lost the task's write: %q", b)
	}
}

func TestPrivateRegistryNeedsTheAppsOrTheAgentsCredentials(t *testing.T) {
	requireRoot(t)
	reg := startRegistry(t, registrytest.Options{Users: map[string]string{"alice": "s3cret"}})
	ref := reg.Host + "/priv:1"
	pushImage(t, ref, v1.Config{Cmd: []string{"/x"}}, "alice", "s3cret", []imagetest.File{{Path: "x", Mode: 0o755, Body: []byte("x")}})

	s, _ := openStore(t, Options{})
	_, err := s.Pull(ctxFor(t, time.Minute), ref, PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "refused access") {
		t.Fatalf("anonymous pull from a private registry: %v, want refused access", err)
	}

	// The app's own credential (Marathon's container.docker.credential).
	if _, err := s.Pull(ctxFor(t, time.Minute), ref, PullOptions{Username: "alice", Password: "wrong"}); err == nil || !strings.Contains(err.Error(), "refused access") {
		t.Fatalf("pull with a wrong app credential: %v, want refused access", err)
	}
	if _, err := s.Pull(ctxFor(t, time.Minute), ref, PullOptions{Username: "alice", Password: "s3cret"}); err != nil {
		t.Fatalf("pull with the app's credential: %v", err)
	}

	creds := filepath.Join(t.TempDir(), "docker.json")
	body := `{"auths": {"` + reg.Host + `": {"username": "alice", "password": "s3cret"}}}`
	if err := os.WriteFile(creds, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Root: t.TempDir(), CredentialsFile: creds}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Open with a world-readable credentials file: %v, want a chmod 600 error", err)
	}
	os.Chmod(creds, 0o600)
	s2, _ := openStore(t, Options{CredentialsFile: creds})
	if _, err := s2.Pull(ctxFor(t, time.Minute), ref, PullOptions{}); err != nil {
		t.Fatalf("pull with credentials: %v", err)
	}
}

func TestPullErrorsSayWhatIsWrongQuickly(t *testing.T) {
	reg := startRegistry(t, registrytest.Options{})
	s, _ := openStore(t, Options{})
	for _, c := range []struct{ ref, want string }{
		{"BAD//ref", "invalid image reference"},
		{"127.0.0.1:1/echo:1", "registry 127.0.0.1:1 unreachable"},
		{reg.Host + "/nope:1", "not found in registry " + reg.Host},
	} {
		start := time.Now()
		_, err := s.Pull(ctxFor(t, time.Minute), c.ref, PullOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("pull %s: %v, want %q", c.ref, err, c.want)
		}
		d := time.Since(start)
		if d > 10*time.Second {
			t.Errorf("pull %s took %v", c.ref, d)
		}
		t.Logf("%s: %v after %v", c.ref, err, d.Round(time.Millisecond))
	}
}

func TestARegistryThatNeverAnswersDoesNotHangThePull(t *testing.T) {
	// Takes connections, says nothing.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s, _ := openStore(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err = s.Pull(ctx, ln.Addr().String()+"/mute:1", PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "did not answer in time") {
		t.Errorf("pull from a mute registry: %v, want did not answer in time", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("pull from a mute registry took %v with a 2 s deadline", d)
	}
}

func TestPlainHTTPOnlyToLoopbackAndInsecureRegistries(t *testing.T) {
	allowed := map[string]bool{"reg.lan:5000": true}
	for reg, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost:5000": true, "[::1]:5000": true,
		"reg.lan:5000": true, "10.1.2.3:5000": false, "index.docker.io": false,
	} {
		if got := plainHTTPAllowed(reg, allowed); got != want {
			t.Errorf("plainHTTPAllowed(%s) = %v, want %v", reg, got, want)
		}
	}
	// Refused before any connection is made.
	tr := newRegistryTransport(nil, nil)
	req, _ := http.NewRequest(http.MethodGet, "http://10.1.2.3:5000/v2/", nil)
	if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "--insecure-registries") {
		t.Errorf("plain HTTP to a private address: %v, want refused", err)
	}
}

func TestGCRemovesWhatNoTaskOrImageUses(t *testing.T) {
	requireRoot(t)
	reg := startRegistry(t, registrytest.Options{})
	shared := append(imagetest.Base(), imagetest.File{Path: "shared", Mode: 0o644, Body: []byte("s")})
	pushImage(t, reg.Host+"/a:1", v1.Config{Cmd: []string{"/a"}}, "", "", shared, []imagetest.File{{Path: "a", Mode: 0o644, Body: []byte("a")}})
	pushImage(t, reg.Host+"/b:1", v1.Config{Cmd: []string{"/b"}}, "", "", shared, []imagetest.File{{Path: "b", Mode: 0o644, Body: []byte("b")}})
	s, _ := openStore(t, Options{})
	a, err := s.Pull(ctxFor(t, time.Minute), reg.Host+"/a:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Pull(ctxFor(t, time.Minute), reg.Host+"/b:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := s.Rootfs("task-a", a, dir); err != nil {
		t.Fatal(err)
	}
	if res, err := s.GC(time.Hour); err != nil || len(res.Images)+len(res.Layers) != 0 {
		t.Fatalf("GC within the delay removed %+v (%v), want nothing", res, err)
	}
	res, err := s.GC(0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Images, []string{b.Digest}) || !slices.Equal(res.Layers, []string{b.Layers[1]}) {
		t.Errorf("GC removed images %v layers %v; want only b (%s) and its own layer %s", res.Images, res.Layers, b.Digest, b.Layers[1])
	}
	if _, err := s.Lookup(reg.Host + "/b:1"); err == nil {
		t.Error("b still in the cache after GC")
	}
	if _, err := s.Lookup(reg.Host + "/a:1"); err != nil {
		t.Errorf("a, used by a task, left the cache: %v", err)
	}
	if err := s.ReleaseRootfs("task-a", dir); err != nil {
		t.Fatal(err)
	}
	res, err = s.GC(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || len(res.Layers) != 2 || res.Bytes == 0 {
		t.Errorf("GC after the last task: %+v, want a and its 2 layers", res)
	}
	left, _ := os.ReadDir(filepath.Join(s.root, "layers", "sha256"))
	if len(left) != 0 {
		t.Errorf("%d layers left after GC", len(left))
	}
}

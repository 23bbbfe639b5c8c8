package agent

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// artifactServer serves a file, a script, a tar.gz and a zip on loopback,
// counting the requests for each path.
func artifactServer(t *testing.T) (*httptest.Server, map[string]*atomic.Int32) {
	t.Helper()
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	for name, body := range map[string]string{"conf/app.conf": "port=1\n", "README": "tar\n"} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	w, _ := zw.Create("lib/data.txt")
	w.Write([]byte("zip\n"))
	zw.Close()
	files := map[string][]byte{
		"/hello.txt":  []byte("hi\n"),
		"/run.sh":     []byte("#!/bin/sh\necho ran\n"),
		"/bundle.tgz": tgz.Bytes(),
		"/assets.zip": zipped.Bytes(),
		"/cached.txt": []byte("cached\n"),
	}
	counts := map[string]*atomic.Int32{}
	for p := range files {
		counts[p] = &atomic.Int32{}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		counts[r.URL.Path].Add(1)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, counts
}

// A task's fetch lands in its sandbox before its command starts: files
// under their names or destPath, archives unpacked, executables runnable,
// cached artifacts downloaded once; a fetch that fails fails the task
// with the reason, and its command never runs.
func TestFetchIntoSandboxBeforeStart(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	srv, counts := artifactServer(t)

	check := `test "$(cat hello.txt)" = hi && test "$(cat conf/app.conf)" = port=1 && test -f bundle.tgz &&
test "$(cat lib/data.txt)" = zip && test "$(bin/run)" = ran && test "$(cat cached.txt)" = cached && echo all-there`
	for i, tid := range []string{"fetch.1", "fetch.2"} {
		req := shellTask(tid, check)
		req.Fetch = []events.FetchURI{
			{URI: srv.URL + "/hello.txt"},
			{URI: srv.URL + "/bundle.tgz", Extract: true},
			{URI: srv.URL + "/assets.zip", Extract: true},
			{URI: srv.URL + "/run.sh", Executable: true, DestPath: "bin/run"},
			{URI: srv.URL + "/cached.txt", Cache: true},
		}
		if ack := env.launch(id, req); ack.Error != "" {
			t.Fatalf("launch %d: %s", i, ack.Error)
		}
		upd := env.master.waitStatus(t, tid, events.TaskFinished)
		if out := sandboxFile(cfg, tid, "stdout"); !strings.Contains(out, "all-there") {
			t.Fatalf("%s: %s; stdout %q stderr %q", tid, upd.Message, out, sandboxFile(cfg, tid, "stderr"))
		}
	}
	if n := counts["/cached.txt"].Load(); n != 1 {
		t.Errorf("the cached artifact was downloaded %d times for two tasks, want 1", n)
	}
	if n := counts["/hello.txt"].Load(); n != 2 {
		t.Errorf("the uncached artifact was downloaded %d times for two tasks, want 2", n)
	}

	req := shellTask("fetch.3", "touch ran")
	req.Fetch = []events.FetchURI{{URI: srv.URL + "/missing.txt"}}
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	upd := env.master.waitStatus(t, "fetch.3", events.TaskFailed)
	if !strings.Contains(upd.Message, "missing.txt") || !strings.Contains(upd.Message, "404") {
		t.Errorf("message %q, want the URI and its 404", upd.Message)
	}
	if _, err := os.Stat(filepath.Join(cfg.WorkDir, "tasks", "fetch.3", "ran")); err == nil {
		t.Error("the command ran although its fetch failed")
	}
}

// A tar archive's symbolic link cannot lead the agent (which writes as
// itself) out of the sandbox: zip files are unpacked before tar archives,
// and the agent refuses links on its way.
func TestFetchLinksCannotLeadOut(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	outside := t.TempDir()

	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "lib", Linkname: outside, Typeflag: tar.TypeSymlink, Mode: 0o777}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	gz.Close()
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	w, _ := zw.Create("lib/x.txt")
	w.Write([]byte("escaped\n"))
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/link.tgz":
			w.Write(tgz.Bytes())
		case "/files.zip":
			w.Write(zipped.Bytes())
		case "/payload":
			w.Write([]byte("escaped\n"))
		}
	}))
	t.Cleanup(srv.Close)

	req := shellTask("evil.1", "true")
	req.Fetch = []events.FetchURI{
		{URI: srv.URL + "/link.tgz", Extract: true},
		{URI: srv.URL + "/files.zip", Extract: true},
		{URI: srv.URL + "/payload", DestPath: "lib/y.txt"},
	}
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	waitFor(t, 10*time.Second, "the task to end", func() bool {
		states := env.master.states("evil.1")
		return len(states) > 0 && states[len(states)-1].Terminal()
	})
	entries, err := os.ReadDir(outside)
	if err != nil || len(entries) != 0 {
		t.Fatalf("the fetch wrote outside the sandbox: %v %v", entries, err)
	}
}

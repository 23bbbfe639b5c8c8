package agent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// A task's stdout past the limit is rotated to stdout.1: the file stays
// bounded, the older output is kept once (stdout.1 whole blocks, the rest
// still at the start of stdout, nothing lost), both readable through the
// files verb.
func TestLogRotationBoundsTheFile(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	cfg.LogMaxSize = 64 << 10
	a := env.newAgent(cfg)
	a.logCheckInterval = 20 * time.Millisecond
	ra := env.start(a)
	id := env.registered(ra)
	// 300 kB in one write (so no check sees part of it), then a marker
	// once the rotation happened.
	cmd := `head -c 300000 /dev/zero | tr '\0' x > big && dd if=big bs=300000 count=1 2>/dev/null; while [ ! -e stdout.1 ]; do sleep 0.05; done; echo after; exec sleep 300`
	if ack := env.launch(id, shellTask("chatty.1", cmd)); ack.Error != "" {
		t.Fatal(ack.Error)
	}
	env.master.waitStatus(t, "chatty.1", events.TaskRunning)
	dir := filepath.Join(cfg.WorkDir, "tasks", "chatty.1")
	want := strings.Repeat("x", 300000) + "after\n"
	var older int
	waitFor(t, 15*time.Second, "stdout rotated", func() bool {
		old, err := os.ReadFile(filepath.Join(dir, "stdout.1"))
		older = len(old)
		return err == nil && string(old)+sandboxFile(cfg, "chatty.1", "stdout") == want
	})
	if older < 300000-8192 {
		t.Errorf("stdout.1 holds %d bytes of the 300000 written before the rotation", older)
	}
	if fi, err := os.Stat(filepath.Join(dir, "stdout")); err != nil || fi.Size() > cfg.LogMaxSize {
		t.Errorf("stdout after rotation: %v, %v", fi.Size(), err)
	}
	ce := &containerEnv{testEnv: env}
	end := int64(older - 10)
	if r := ce.readFile(events.FileReadRequest{TaskID: "chatty.1", Path: "stdout.1", Offset: end, Length: 100}); r.Data != strings.Repeat("x", 10) || r.Offset != end {
		t.Errorf("stdout.1's end = %+v", r)
	}
	if r := ce.readFile(events.FileReadRequest{TaskID: "chatty.1", Path: "stdout.1", Offset: 0}); len(r.Data) != older {
		t.Errorf("stdout.1 read in full: %d bytes, want %d", len(r.Data), older)
	}
}

// A task writing all the while its log is rotated loses no line: what
// was written is, in order, in the rotated pieces and the file after.
func TestLogRotationLosesNoWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	const lines = 200000
	done := make(chan error, 1)
	go func() {
		for i := range lines {
			if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
				done <- err
				return
			}
		}
		done <- w.Close()
	}()
	var got bytes.Buffer
	rotations := 0
	collect := func() {
		rotated, err := rotateLog(path, 16<<10)
		if err != nil {
			t.Fatal(err)
		}
		if rotated {
			rotations++
			old, err := os.ReadFile(path + ".1")
			if err != nil {
				t.Fatal(err)
			}
			got.Write(old)
		}
	}
	for writing := true; writing; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			writing = false
		default:
			collect()
		}
	}
	rest, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got.Write(rest)
	var want bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if rotations < 10 {
		t.Fatalf("only %d rotations while the task wrote: the test proves nothing", rotations)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("after %d rotations the pieces hold %d bytes, the task wrote %d: lines lost or repeated", rotations, got.Len(), want.Len())
	}
	t.Logf("%d rotations, %d bytes, nothing lost", rotations, want.Len())
}

// A finished task's sandbox goes after the GC delay; a running task's
// stays, however old.
func TestSandboxCollectedAfterTheDelay(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	cfg.SandboxGCDelay = 2 * time.Second
	a := env.newAgent(cfg)
	a.gcInterval = 20 * time.Millisecond
	ra := env.start(a)
	id := env.registered(ra)
	if ack := env.launch(id, shellTask("long.1", "exec sleep 300")); ack.Error != "" {
		t.Fatal(ack.Error)
	}
	if ack := env.launch(id, shellTask("short.1", "echo done")); ack.Error != "" {
		t.Fatal(ack.Error)
	}
	env.master.waitStatus(t, "short.1", events.TaskFinished)
	if !sandboxExists(cfg, "short.1") {
		t.Error("the finished task's sandbox went before the delay")
	}
	waitFor(t, 15*time.Second, "the finished task's sandbox removed", func() bool { return !sandboxExists(cfg, "short.1") })
	if !sandboxExists(cfg, "long.1") {
		t.Error("the running task's sandbox was removed")
	}
}

func TestParseLogSize(t *testing.T) {
	for in, want := range map[string]int64{"10MB": 10 << 20, "512kb": 512 << 10, "1GB": 1 << 30, "4096": 4096, "100B": 100, "-1": -1} {
		if got, err := ParseLogSize(in); err != nil || got != want {
			t.Errorf("ParseLogSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "ten MB", "5TB"} {
		if _, err := ParseLogSize(in); err == nil {
			t.Errorf("ParseLogSize(%q) accepted", in)
		}
	}
}

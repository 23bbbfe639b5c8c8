package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// A task's stdout past the limit is rotated to stdout.1: the file stays
// bounded, the older output is kept once, both readable through the
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
	waitFor(t, 15*time.Second, "stdout rotated", func() bool {
		fi, err := os.Stat(filepath.Join(dir, "stdout.1"))
		return err == nil && fi.Size() == 300000 && sandboxFile(cfg, "chatty.1", "stdout") == "after\n"
	})
	if fi, err := os.Stat(filepath.Join(dir, "stdout")); err != nil || fi.Size() > cfg.LogMaxSize {
		t.Errorf("stdout after rotation: %v, %v", fi.Size(), err)
	}
	ce := &containerEnv{testEnv: env}
	if r := ce.readFile(events.FileReadRequest{TaskID: "chatty.1", Path: "stdout.1", Offset: 299990, Length: 100}); r.Data != strings.Repeat("x", 10) || r.Offset != 299990 {
		t.Errorf("stdout.1's end = %+v", r)
	}
	if r := ce.readFile(events.FileReadRequest{TaskID: "chatty.1", Path: "stdout.1", Offset: 0}); len(r.Data) != 300000 {
		t.Errorf("stdout.1 read in full: %d bytes", len(r.Data))
	}
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

package lbsync

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/atollhq/atoll/templates"
)

// TestTemplateWatcher: a broken file is refused and reported while the
// set in use keeps rendering; a fixed file is taken; a poke (SIGHUP) loads
// a change the poll cannot see.
func TestTemplateWatcher(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, templates.FrontendBackendGlue)
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("  use_backend {{.Backend}} # v1\n")
	poke := make(chan os.Signal, 1)
	tw := &TemplateWatcher{Dir: dir, Interval: 10 * time.Millisecond, Poke: poke}
	set, err := tw.Load()
	if err != nil {
		t.Fatal(err)
	}
	a := &recordingApplier{}
	s := NewSyncer(Config{}, set, a, time.Millisecond, nil)
	s.RetainState = true
	reports := runSyncer(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); tw.Run(ctx, s) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	w := newWorld()
	w.app("/web", []int{10001}, map[string]string{"HAPROXY_GROUP": "external"})
	s.Idle(w.s)
	waitConfig := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, applied := a.snapshot()
			if n := len(applied); n > 0 && strings.Contains(applied[n-1].Config, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no applied config with %q", want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitConfig("# v1")

	write("  use_backend {{.Backend # v2\n")
	if e := waitReport(t, reports, func(e AppError) bool { return e.AppID == "" }); !strings.Contains(e.Err, templates.FrontendBackendGlue) {
		t.Errorf("report %+v", e)
	}
	w.app("/api", []int{10002}, map[string]string{"HAPROXY_GROUP": "external"})
	s.Idle(w.s)
	waitConfig("use_backend api_10002 # v1") // the set in use renders the new app

	// Renders, but config-parser does not know the line: refused too.
	write("  use_backendz {{.Backend}} # bad\n")
	if e := waitReport(t, reports, func(e AppError) bool { return e.AppID == "" }); !strings.Contains(e.Err, "use_backendz") {
		t.Errorf("report %+v", e)
	}

	write("  use_backend {{.Backend}} # v3\n")
	waitConfig("use_backend api_10002 # v3")

	// Same size, same time: only a poke finds it.
	fi, _ := os.Stat(file)
	write("  use_backend {{.Backend}} # v4\n")
	if err := os.Chtimes(file, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	poke <- syscall.SIGHUP
	waitConfig("use_backend api_10002 # v4")
}

package lbsync

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

// TestDiskWriterNewestWins: while a background write is slow, queued
// configs collapse to the newest, a reload's write supersedes them, and
// nothing older ever lands after something newer.
func TestDiskWriterNewestWins(t *testing.T) {
	var mu sync.Mutex
	var written []string
	release := make(chan struct{})
	w := newDiskWriter(func(ctx context.Context, cfg string, _ map[string]string) error {
		if cfg == "slow" {
			<-release
		}
		if cfg == "bad" {
			return errors.New("haproxy -c says no")
		}
		mu.Lock()
		written = append(written, cfg)
		mu.Unlock()
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	defer func() { cancel(); <-done }()

	w.queue("slow", nil)
	w.queue("a", nil) // waits behind "slow"...
	w.queue("b", nil) // ...and is replaced by "b"
	close(release)
	if err := w.wait(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := append([]string(nil), written...)
	mu.Unlock()
	if len(got) == 0 || got[len(got)-1] != "b" || slices.Contains(got, "a") {
		t.Fatalf("written %v, want ... b and never a", got)
	}

	// A reload's write supersedes what is queued; the queued one is
	// skipped even if the writer picks it up afterwards.
	w.queue("c", nil)
	if err := w.writeNow(ctx, "reload", nil); err != nil {
		t.Fatal(err)
	}
	if err := w.wait(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	last := written[len(written)-1]
	mu.Unlock()
	if last != "reload" {
		t.Fatalf("last written %q, want the reload's", last)
	}

	w.queue("bad", nil)
	if err := w.wait(); err == nil || w.lastErr() == nil {
		t.Fatal("a failed background write was not reported")
	}
	w.queue("d", nil)
	if err := w.wait(); err != nil {
		t.Fatalf("error outlived the next good write: %v", err)
	}
}

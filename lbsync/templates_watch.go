package lbsync

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/atollhq/atoll/templates"
)

// TemplateWatcher re-reads a --templates-dir when its files change. It
// polls names, sizes and modification times (no inotify dependency, and
// it works on any filesystem) and also looks at once when asked (SIGHUP).
type TemplateWatcher struct {
	Dir string
	// Interval between polls; 1 s when 0.
	Interval time.Duration
	// Poke makes the watcher look now (`atoll lb` sends SIGHUP's here).
	Poke <-chan os.Signal

	seen string // fingerprint of what was last loaded
}

// Load loads the set in Dir, noting what it loaded so that Run only
// reacts to later changes. The fingerprint is taken first: a change
// during the load is seen by the next poll.
func (w *TemplateWatcher) Load() (*templates.Set, error) {
	w.seen = fingerprint(w.Dir)
	return templates.Load(w.Dir)
}

// Run hands every changed set to s until ctx ends: s.SetTemplates when it
// loads, s.RefuseTemplates when it does not.
func (w *TemplateWatcher) Run(ctx context.Context, s *Syncer) {
	interval := w.Interval
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.Poke:
			w.seen = "" // asked to look: load even if nothing seems changed
		}
		fp := fingerprint(w.Dir)
		if fp == w.seen {
			continue
		}
		w.seen = fp
		set, err := templates.Load(w.Dir)
		if err != nil {
			s.RefuseTemplates(fmt.Errorf("templates in %s: %w", w.Dir, err))
			continue
		}
		// A refused set is reported by SetTemplates.
		_ = s.SetTemplates(set)
	}
}

// fingerprint names every file of dir with its size and modification
// time; an unreadable dir has its error as fingerprint.
func fingerprint(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "error: " + err.Error()
	}
	lines := make([]string, 0, len(ents))
	for _, e := range ents {
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %d %d", e.Name(), fi.Size(), fi.ModTime().UnixNano()))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

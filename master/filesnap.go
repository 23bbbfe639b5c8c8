package master

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/fsperm"
)

// The snapshot is JSON lines: a header, then one record per line (agents,
// apps, deployments, tasks, as many as the header counts), so that it is
// written as a stream and decoded on every core. Earlier versions wrote
// the State as one JSON object; such a snapshot still loads.
const snapshotFormat = "atoll-snapshot/2"

// snapshotHeader is the first line of a snapshot.
type snapshotHeader struct {
	Format      string         `json:"format"`
	Epoch       uint64         `json:"epoch"`
	Seq         uint64         `json:"seq"`
	Leader      *events.Leader `json:"leader,omitempty"`
	Agents      int            `json:"agents"`
	Apps        int            `json:"apps"`
	Deployments int            `json:"deployments"`
	Tasks       int            `json:"tasks"`
	// Groups come last, after the tasks: a snapshot from before groups
	// existed has none.
	Groups int `json:"groups,omitempty"`
	// Then the histories, which only the leader reads: each app's kept
	// definitions, each group's versions, and the app definitions kept
	// for group versions (a snapshot from before has none).
	AppVersions   int `json:"appVersions,omitempty"`
	GroupVersions int `json:"groupVersions,omitempty"`
	KeptApps      int `json:"keptApps,omitempty"`
	// Last, each app's last task failure (lastTaskFailure), which Marathon
	// keeps across restarts (a snapshot from before has none).
	AppFailures int `json:"appFailures,omitempty"`
}

func (h snapshotHeader) records() int {
	return h.Agents + h.Apps + h.Deployments + h.Tasks + h.Groups + h.AppVersions + h.GroupVersions + h.KeptApps + h.AppFailures
}

// countHistories is how many records the histories of st take.
func countHistories[T any](m map[string][]T) int {
	n := 0
	for _, h := range m {
		n += len(h)
	}
	return n
}

// errCrash is what a compaction stopped by crashAt returns.
var errCrash = errors.New("simulated crash")

// readSnapshot returns the state in the snapshot at path (empty when there
// is none) and how many records it holds. The state's task index is not
// built.
func readSnapshot(path string) (*events.State, int, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return events.NewState(), 0, nil
	case err != nil:
		return nil, 0, fmt.Errorf("load snapshot: %w", err)
	}
	if !bytes.HasPrefix(data, []byte(`{"format":`)) {
		// One JSON object, as earlier versions wrote it.
		st := events.NewState()
		if err := json.Unmarshal(data, st); err != nil {
			return nil, 0, fmt.Errorf("load snapshot %s: %w", path, err)
		}
		st.Normalize()
		return st, len(st.Agents) + len(st.Apps) + len(st.Deployments) + len(st.Tasks) + len(st.Groups), nil
	}
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	var h snapshotHeader
	if err := json.Unmarshal(first, &h); err != nil {
		return nil, 0, fmt.Errorf("load snapshot %s: header: %w", path, err)
	}
	if h.Format != snapshotFormat {
		return nil, 0, fmt.Errorf("load snapshot %s: format %q is not %q, the one this version reads", path, h.Format, snapshotFormat)
	}
	lines := make([][]byte, 0, h.records())
	for len(rest) > 0 {
		line, more, ok := bytes.Cut(rest, []byte("\n"))
		if !ok {
			return nil, 0, fmt.Errorf("load snapshot %s: its last record has no newline: the file is damaged", path)
		}
		lines = append(lines, line)
		rest = more
	}
	if len(lines) != h.records() {
		return nil, 0, fmt.Errorf("load snapshot %s: %d records, its header says %d: the file is damaged", path, len(lines), h.records())
	}
	st := &events.State{Epoch: h.Epoch, Seq: h.Seq, Leader: h.Leader}
	at := 0
	next := func(n int) [][]byte { at += n; return lines[at-n : at] }
	if st.Agents, err = decodeRecords(path, "agent", next(h.Agents), 1, func(a *events.Agent) string { return a.ID }); err != nil {
		return nil, 0, err
	}
	if st.Apps, err = decodeRecords(path, "app", next(h.Apps), 1+h.Agents, func(a *events.App) string { return a.ID }); err != nil {
		return nil, 0, err
	}
	if st.Deployments, err = decodeRecords(path, "deployment", next(h.Deployments), 1+h.Agents+h.Apps,
		func(d *events.Deployment) string { return d.ID }); err != nil {
		return nil, 0, err
	}
	if st.Tasks, err = decodeRecords(path, "task", next(h.Tasks), 1+h.Agents+h.Apps+h.Deployments,
		func(t *events.Task) string { return t.ID }); err != nil {
		return nil, 0, err
	}
	if st.Groups, err = decodeRecords(path, "group", next(h.Groups), 1+h.Agents+h.Apps+h.Deployments+h.Tasks,
		func(g *events.Group) string { return g.ID }); err != nil {
		return nil, 0, err
	}
	at0 := 1 + h.Agents + h.Apps + h.Deployments + h.Tasks + h.Groups
	vers, err := decodeLines[events.App](path, "app version", next(h.AppVersions), at0)
	if err != nil {
		return nil, 0, err
	}
	for _, v := range vers {
		if st.AppVersions == nil {
			st.AppVersions = map[string][]events.App{}
		}
		st.AppVersions[v.ID] = events.WithVersion(st.AppVersions[v.ID], v)
	}
	gvers, err := decodeLines[events.GroupVersion](path, "group version", next(h.GroupVersions), at0+h.AppVersions)
	if err != nil {
		return nil, 0, err
	}
	kept, err := decodeLines[events.App](path, "kept app", next(h.KeptApps), at0+h.AppVersions+h.GroupVersions)
	if err != nil {
		return nil, 0, err
	}
	st.SetGroupVersions(gvers, kept)
	fails, err := decodeLines[events.TaskFailure](path, "app failure", next(h.AppFailures), at0+h.AppVersions+h.GroupVersions+h.KeptApps)
	if err != nil {
		return nil, 0, err
	}
	for _, f := range fails {
		if st.AppFailures == nil {
			st.AppFailures = make(map[string]events.TaskFailure, len(fails))
		}
		st.AppFailures[f.Task.AppID] = f
	}
	return st, h.records(), nil
}

// decodeRecords decodes lines side by side into a map by id; first is the
// line number (from 0) of lines[0] in the file, for errors.
func decodeRecords[T any](path, kind string, lines [][]byte, first int, id func(*T) string) (map[string]T, error) {
	recs, err := decodeLines[T](path, kind, lines, first)
	if err != nil {
		return nil, err
	}
	for i := range recs {
		if id(&recs[i]) == "" {
			return nil, fmt.Errorf("load snapshot %s: line %d: %s without an id", path, first+i+1, kind)
		}
	}
	out := make(map[string]T, len(recs))
	for i := range recs {
		out[id(&recs[i])] = recs[i]
	}
	if len(out) != len(recs) {
		return nil, fmt.Errorf("load snapshot %s: %d %s records for %d ids: the file is damaged", path, len(recs), kind, len(out))
	}
	return out, nil
}

// decodeLines decodes lines side by side; first is the line number (from
// 0) of lines[0] in the file, for errors.
func decodeLines[T any](path, kind string, lines [][]byte, first int) ([]T, error) {
	recs := make([]T, len(lines))
	chunks := (len(lines) + decodeChunk - 1) / decodeChunk
	errs := make([]error, chunks)
	parallel(chunks, func(c int) error {
		for i := c * decodeChunk; i < min((c+1)*decodeChunk, len(lines)); i++ {
			if err := json.Unmarshal(lines[i], &recs[i]); err != nil {
				errs[c] = fmt.Errorf("load snapshot %s: line %d (%s): %w", path, first+i+1, kind, err)
				return errs[c]
			}
		}
		return nil
	})
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	return recs, nil
}

// writeSnapshot replaces the snapshot at path with st: written to a
// temporary file, synced, renamed into place, the folder synced. A crash
// at any point leaves the old snapshot or the new one, and maybe a
// temporary file that Load removes. It returns the records written.
func (f *FileStore) writeSnapshot(ctx context.Context, path string, st *events.State) (int, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*") // mode 0600
	if err != nil {
		return 0, fmt.Errorf("write snapshot: %w", err)
	}
	crashed := false
	defer func() {
		if !crashed {
			os.Remove(tmp.Name()) // after a rename: nothing there
		}
	}()
	h := snapshotHeader{Format: snapshotFormat, Epoch: st.Epoch, Seq: st.Seq, Leader: st.Leader,
		Agents: len(st.Agents), Apps: len(st.Apps), Deployments: len(st.Deployments), Tasks: len(st.Tasks), Groups: len(st.Groups),
		AppVersions: countHistories(st.AppVersions), GroupVersions: countHistories(st.GroupVersions), KeptApps: countHistories(st.KeptApps),
		AppFailures: len(st.AppFailures)}
	err = tmp.Chmod(storeFileMode)
	if err == nil {
		err = writeRecords(ctx, tmp, h, st)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("write snapshot %s: %w", tmp.Name(), err)
	}
	if f.crashAt != nil && f.crashAt("temp-written") {
		crashed = true
		return 0, errCrash
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("write snapshot: %w", err)
	}
	if err := fsperm.SyncDir(filepath.Dir(path)); err != nil {
		return 0, err
	}
	return h.records(), nil
}

// writeRecords streams the header and the records to w.
func writeRecords(ctx context.Context, w *os.File, h snapshotHeader, st *events.State) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	n := 0
	put := func(v any) error {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		bw.Write(data)
		return bw.WriteByte('\n')
	}
	if err := put(h); err != nil {
		return err
	}
	for _, a := range st.Agents {
		if err := put(a); err != nil {
			return err
		}
	}
	for _, a := range st.Apps {
		if err := put(a); err != nil {
			return err
		}
	}
	for _, d := range st.Deployments {
		if err := put(d); err != nil {
			return err
		}
	}
	for _, t := range st.Tasks {
		if err := put(t); err != nil {
			return err
		}
	}
	for _, g := range st.Groups {
		if err := put(g); err != nil {
			return err
		}
	}
	for _, h := range st.AppVersions {
		for _, a := range h {
			if err := put(a); err != nil {
				return err
			}
		}
	}
	for _, h := range st.GroupVersions {
		for _, g := range h {
			if err := put(g); err != nil {
				return err
			}
		}
	}
	for _, h := range st.KeptApps {
		for _, a := range h {
			if err := put(a); err != nil {
				return err
			}
		}
	}
	for _, f := range st.AppFailures {
		if err := put(f); err != nil {
			return err
		}
	}
	return bw.Flush()
}

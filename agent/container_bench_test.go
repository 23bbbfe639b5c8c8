package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/atollhq/atoll/agent/imagestore"
	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/imagetest"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/registrytest"
)

// BenchmarkContainerTask measures the agent's launch path for a task
// from a cached image (host network): launch to running (ms/start), and
// what each running container costs: the agent's heap (agent-heap-KB)
// and the resident memory of the shell and `runc run` that stay with it
// (runtime-KB; the container's own processes are not counted). Every
// container started stays running until the end, so the figures are per
// running container at b.N of them.
func BenchmarkContainerTask(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("containers need root")
	}
	reg := registrytest.Start(b, registrytest.Options{})
	bb, err := imagetest.Busybox()
	if err != nil {
		b.Fatal(err)
	}
	layer, err := imagetest.Layer(append(imagetest.Base(), bb...)...)
	if err != nil {
		b.Fatal(err)
	}
	img, err := imagetest.Image(v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"/bin/sleep", "600"}}, layer)
	if err != nil {
		b.Fatal(err)
	}
	ref := reg.Host + "/sleep:1"
	if err := imagetest.Push(context.Background(), ref, img, "", ""); err != nil {
		b.Fatal(err)
	}
	srv := eventstest.StartNATS(b)
	subj := events.Subjects{Prefix: "bench"}
	dir := b.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			b.Fatal(err)
		}
	}
	a, err := New(Config{
		NC: srv.ConnectIn(b, subj, natsauth.RoleAgent, testNode), Subjects: subj, Hostname: testNode,
		AdvertiseIP: "127.0.0.2", Resources: events.Resources{Cpus: 2, Mem: 4096, Disk: 1024},
		WorkDir: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	if a.ctrs.runtimeErr != nil {
		b.Fatal(a.ctrs.runtimeErr)
	}
	b.Cleanup(func() { removeParentCgroup(a) })
	d := a.ctrs.driver
	launch := func(id string) events.LaunchRequest {
		req := shellTask(id, "")
		req.Limits = &events.TaskLimits{Cpus: 0.1, Mem: 32}
		req.Container = &events.ContainerLaunch{Image: ref}
		return req
	}
	// The image is pulled once, before the timing.
	if _, err := d.Images.Pull(context.Background(), ref, imagestore.PullOptions{}); err != nil {
		b.Fatal(err)
	}
	var ids []string
	b.Cleanup(func() {
		ctx := context.Background()
		for _, id := range ids {
			_ = d.Runtime.Kill(ctx, id, 0)
			_, _ = d.Cleanup(ctx, id)
		}
	})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var total time.Duration
	var pids []int
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("bench.%d", i)
		t0 := time.Now()
		if err := a.launch(launch(id)); err != nil {
			b.Fatal(err)
		}
		var pid int
		for pid == 0 {
			a.mu.Lock()
			t := a.tasks[id]
			if t.exited {
				a.mu.Unlock()
				b.Fatalf("%s did not start", id)
			}
			pid = t.pid
			a.mu.Unlock()
			if pid == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		total += time.Since(t0)
		ids, pids = append(ids, id), append(pids, pid)
	}
	b.StopTimer()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	var rss int64
	for _, pid := range pids {
		rss += processTreeRSS(pid)
	}
	n := float64(len(ids))
	b.ReportMetric(float64(total.Microseconds())/1000/n, "ms/start")
	b.ReportMetric(float64(rss)/n, "runtime-KB")
	b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/1024/n, "agent-heap-KB")
}

// processTreeRSS is the resident memory of pid and its descendants, in
// kB, stopping at a container's init (another pid namespace's first
// process: the container's own memory is its app's, not the agent's).
func processTreeRSS(pid int) int64 {
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	var n int64
	for _, line := range bytes.Split(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("NSpid:")); ok && len(bytes.Fields(v)) > 1 {
			return 0 // in a container
		}
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			n, _ = strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
		}
	}
	children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range bytes.Fields(children) {
		if c, err := strconv.Atoi(string(f)); err == nil {
			n += processTreeRSS(c)
		}
	}
	return n
}

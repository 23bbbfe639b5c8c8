package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/natsauth"
)

// BenchmarkTaskStart measures how long an agent takes to start a host
// process task (sandbox, process, checkpoint), without isolation and with
// a cgroup (created, joined through the start gate before the exec), so
// that the cost of isolation is a figure.
func BenchmarkTaskStart(b *testing.B) {
	srv := eventstest.StartNATS(b)
	subj := events.Subjects{Prefix: "bench"}
	for _, iso := range []Isolation{IsolationNone, IsolationCgroups} {
		b.Run("isolation="+string(iso), func(b *testing.B) {
			dir := b.TempDir()
			for _, d := range []string{filepath.Dir(dir), dir} {
				if err := os.Chmod(d, 0o711); err != nil {
					b.Fatal(err)
				}
			}
			a, err := New(Config{
				NC: srv.ConnectIn(b, subj, natsauth.RoleAgent, testNode), Subjects: subj, Hostname: testNode,
				AdvertiseIP: "127.0.0.2", Resources: events.Resources{Cpus: 2, Mem: 1024, Disk: 1024},
				WorkDir: dir, Isolation: iso, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { removeParentCgroup(a) })
			var total time.Duration
			for i := 0; b.Loop(); i++ {
				req := limitedTask(fmt.Sprintf("bench.%d", i), "exec sleep 60", 0.1, 32)
				t0 := time.Now()
				st, err := a.start(context.Background(), req)
				total += time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				killAndReap(st.pid)
				a.destroyCgroup(req.Task.ID, st.cgroup)
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/start")
		})
	}
}

package master

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// BenchmarkGroupVersionCost10k measures what a group change records at
// 10,000 apps: the bytes of the group versions it writes (stored, and
// kept in the leader's memory; NATS carries only their names) and how
// long the change takes. Each change gives one group new dependencies.
// "100x100" is 100 groups of 100 apps (/bench/gNN/appNNNN), "flat" one
// group of 10,000 (/flat/appNNNNN); "first" is the first change, which
// records every group of the tree.
func BenchmarkGroupVersionCost10k(b *testing.B) {
	for _, layout := range []struct {
		name, group string
		id          func(i int) string
	}{
		{"100x100", "/bench/g07", func(i int) string { return fmt.Sprintf("/bench/g%02d/app%04d", i/100, i) }},
		{"flat", "/flat", func(i int) string { return fmt.Sprintf("/flat/app%05d", i) }},
	} {
		b.Run(layout.name, func(b *testing.B) {
			m, _ := newAPI(b, "")
			at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) // before the test's clock
			m.mu.Lock()
			st := events.NewState()
			st.Epoch, st.Seq, st.Leader = m.state.Epoch, m.state.Seq, m.state.Leader
			st.AppVersions = map[string][]events.App{}
			for i := range 10000 {
				a := events.App{ID: layout.id(i), Cmd: "sleep 1000", Instances: 0, Cpus: 0.01, Mem: 1,
					Version: at, VersionInfo: events.VersionInfo{LastScalingAt: at, LastConfigChangeAt: at}}
				st.Apps[a.ID] = a
				st.AppVersions[a.ID] = []events.App{a}
			}
			st.IndexByAgent()
			m.state = st
			m.reads.reset(st)
			m.mu.Unlock()
			written := func(v time.Time) (n, size int) {
				m.View(func(s *events.State) {
					for _, h := range s.GroupVersions {
						for _, gv := range h {
							if gv.Version.Equal(v) {
								data, _ := json.Marshal(gv)
								n, size = n+1, size+len(data)
							}
						}
					}
				})
				return n, size
			}
			change := func(i int) time.Time {
				deps := []string{fmt.Sprintf("/dep%d", i%2)}
				ch, err := m.UpdateGroup(groupUpdate{ID: layout.group, Dependencies: &deps}, "/", true, false)
				if err != nil {
					b.Fatal(err)
				}
				return ch.Deployment.Version
			}
			start := time.Now()
			n, size := written(change(0))
			b.Logf("%s first change: %d group versions, %d bytes, %v", layout.name, n, size, time.Since(start))
			var total, versions int
			i := 1
			for b.Loop() {
				n, size := written(change(i))
				total, versions = total+size, versions+n
				i++
			}
			// The recording alone, over the tree as it stands.
			m.mu.Lock()
			versions0 := make(map[string]time.Time, len(m.state.Apps))
			for id, a := range m.state.Apps {
				versions0[id] = a.Version
			}
			start = time.Now()
			m.groupVersionChangesLocked(versions0, m.state.Groups, m.changeTimeLocked())
			took := time.Since(start)
			m.mu.Unlock()
			b.ReportMetric(float64(took)/1e6, "record-ms")
			b.ReportMetric(float64(total)/float64(i-1), "gv-bytes/op")
			b.ReportMetric(float64(versions)/float64(i-1), "gv/op")
		})
	}
}

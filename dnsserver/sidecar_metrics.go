package dnsserver

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atollhq/atoll/events"
)

// changeClock passes a follower's calls on to the server's handler and
// notes when the zone last changed, for the snapshot-age metric. It is a
// wrapper rather than a hook in the server so that the server stays
// ignorant of how its input is watched.
type changeClock struct {
	next  events.Handler
	now   func() time.Time
	start time.Time
	last  atomic.Int64 // unix nanoseconds of the last change; 0: none yet
}

func newChangeClock(next events.Handler, now func() time.Time) *changeClock {
	return &changeClock{next: next, now: now, start: now()}
}

// Reset implements events.Handler.
func (c *changeClock) Reset(s *events.State) {
	c.next.Reset(s)
	c.last.Store(c.now().UnixNano())
}

// Applied implements events.Handler.
func (c *changeClock) Applied(s *events.State, e events.Event) {
	c.next.Applied(s, e)
	c.last.Store(c.now().UnixNano())
}

// age is the time since the zone last changed; before the first snapshot,
// the time since the sidecar started (how long it has been without one).
func (c *changeClock) age() time.Duration {
	last := c.last.Load()
	if last == 0 {
		return c.now().Sub(c.start)
	}
	return c.now().Sub(time.Unix(0, last))
}

// registerFollowerMetrics adds the metrics read from the follower, the
// clock and the server at scrape time: values that already exist as
// counters elsewhere are read, not copied.
func registerFollowerMetrics(m *Metrics, f *events.Follower, c *changeClock, srv *Server) {
	m.Registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "atoll_dns_resyncs_total",
			Help: "Snapshots taken after the first (gap in seq, new epoch, missed sync tick).",
		}, func() float64 { return float64(f.Resyncs()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "atoll_dns_synced",
			Help: "1 once the zone holds a complete snapshot of the cluster, 0 before.",
		}, func() float64 {
			if f.Synced() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "atoll_dns_snapshot_age_seconds",
			Help: "Seconds since the zone last changed (snapshot or event); before the first snapshot, since start.",
		}, func() float64 { return c.age().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "atoll_dns_zone_records",
			Help: "Records in the current zone.",
		}, func() float64 {
			if z := srv.Zone(); z != nil {
				return float64(z.Len())
			}
			return 0
		}),
	)
}

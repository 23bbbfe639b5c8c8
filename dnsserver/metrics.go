package dnsserver

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the DNS sidecar's Prometheus metrics, in a registry of their
// own (several servers may share a process in tests and `atoll dev`).
type Metrics struct {
	Registry *prometheus.Registry
	// Queries counts answered queries by question type and rcode
	// ("A", "NOERROR"); forwarded ones included.
	Queries *prometheus.CounterVec
	// Forwarded counts forwarded queries by outcome: "answered",
	// "cached", "failed", "refused".
	Forwarded *prometheus.CounterVec
	// ForwardSeconds is the upstream round trip of forwarded queries.
	ForwardSeconds prometheus.Histogram
	// EventsApplied counts events applied to the zone.
	EventsApplied prometheus.Counter
	// ZoneUpdateSeconds is the time to build the next zone for one event
	// (or a whole snapshot).
	ZoneUpdateSeconds prometheus.Histogram
	// Malformed counts packets that could not be parsed.
	Malformed prometheus.Counter
}

// NewMetrics makes and registers the metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atoll_dns_queries_total", Help: "DNS queries answered, by question type and rcode.",
		}, []string{"type", "rcode"}),
		Forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atoll_dns_forwarded_total", Help: "Queries for names outside the domain, by outcome.",
		}, []string{"outcome"}),
		ForwardSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "atoll_dns_forward_seconds", Help: "Round trip of forwarded queries to the upstream resolvers.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		EventsApplied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atoll_dns_events_applied_total", Help: "Cluster events applied to the zone.",
		}),
		ZoneUpdateSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "atoll_dns_zone_update_seconds", Help: "Time to build the next zone after an event or snapshot.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 2, 18),
		}),
		Malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atoll_dns_malformed_total", Help: "Packets that could not be parsed as DNS queries.",
		}),
	}
	m.Registry.MustRegister(m.Queries, m.Forwarded, m.ForwardSeconds, m.EventsApplied, m.ZoneUpdateSeconds, m.Malformed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

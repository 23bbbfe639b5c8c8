package lbsync

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the LB sidecar's Prometheus metrics, in a registry of their
// own (several sidecars may share a process in tests and `atoll dev`).
type Metrics struct {
	Registry *prometheus.Registry

	Renders         prometheus.Counter
	RenderSeconds   prometheus.Histogram
	Reloads         prometheus.Counter
	ReloadFailures  prometheus.Counter
	Commands        prometheus.Counter
	CommandFailures prometheus.Counter
	// LeftOut is how many app ports the current config leaves out;
	// LeftOutTotal counts each time one is newly left out.
	LeftOut      prometheus.Gauge
	LeftOutTotal prometheus.Counter
	// TemplateRefusals counts template sets refused (parse error, or a
	// render or check that fails as a whole); ConfigRejections counts
	// configs that could not be rendered or passed `haproxy -c` with no
	// app to blame (the old config kept serving).
	TemplateRefusals prometheus.Counter
	ConfigRejections prometheus.Counter
	// Repairs counts reconcile repairs by kind: "command", "reload",
	// "restart".
	Repairs *prometheus.CounterVec
	// EventApplied is the time from a cluster event to HAProxy serving it.
	EventApplied prometheus.Histogram
}

// NewMetrics makes the metrics and registers them, with the Go and
// process collectors, in a new registry.
func NewMetrics() *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &Metrics{
		Registry:      prometheus.NewRegistry(),
		Renders:       counter("atoll_lb_renders_total", "HAProxy configs rendered."),
		RenderSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "atoll_lb_render_seconds", Help: "Time to render the HAProxy config.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)}),
		Reloads:       counter("atoll_lb_reloads_total", "HAProxy reloads (and starts) done."),
		ReloadFailures: counter("atoll_lb_reload_failures_total",
			"Reloads refused or failed: a candidate config rejected, or no new worker."),
		Commands:        counter("atoll_lb_runtime_commands_total", "Runtime API commands sent."),
		CommandFailures: counter("atoll_lb_runtime_command_failures_total", "Runtime API commands that failed."),
		LeftOut:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "atoll_lb_apps_left_out", Help: "App ports the current config leaves out."}),
		LeftOutTotal:    counter("atoll_lb_apps_left_out_total", "App ports newly left out of the config."),
		TemplateRefusals: counter("atoll_lb_template_set_refusals_total",
			"Template sets refused: the previous set stays in use."),
		ConfigRejections: counter("atoll_lb_config_rejections_total",
			"Configs not rendered or rejected by haproxy -c with no app to blame: the old config kept serving."),
		Repairs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "atoll_lb_reconcile_repairs_total",
			Help: "Drift repaired by the periodic reconcile, by kind (command, reload, restart)."}, []string{"kind"}),
		EventApplied: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "atoll_lb_event_applied_seconds",
			Help:    "Time from a cluster event (or, with --sse, the state's arrival) to HAProxy serving it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
	}
	m.Registry.MustRegister(m.Renders, m.RenderSeconds, m.Reloads, m.ReloadFailures, m.Commands, m.CommandFailures,
		m.LeftOut, m.LeftOutTotal, m.TemplateRefusals, m.ConfigRejections, m.Repairs, m.EventApplied,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

package master

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/atollhq/atoll/events"
)

// metrics are the master's Prometheus metrics, in a registry of its own so
// that two masters in one process (tests, `atoll dev`) never collide.
type metrics struct {
	reg       *prometheus.Registry
	events    *prometheus.CounterVec
	commit    prometheus.Histogram
	reconcile prometheus.Histogram
	launches  prometheus.Counter
	kills     prometheus.Counter
	// agentRequests counts launch and kill requests to agents, by kind:
	// one per agent per batch (or per task, to an agent that predates
	// batches).
	agentRequests *prometheus.CounterVec
	failures      prometheus.Counter
	statusRecv    prometheus.Counter
	lbReports     prometheus.Counter
	// unhealthyKills counts tasks killed for failing their health checks.
	unhealthyKills prometheus.Counter
	// refused counts messages refused because their sender may not say
	// them (another node's agent, a reply subject that is no inbox).
	refused *prometheus.CounterVec
	// unknownKills counts kills of tasks an agent runs that the state
	// does not hold; lostFromReports, tasks the state placed on an agent
	// whose report lacks them. Both are what a master too slow for its
	// agents churns through (issue 13): kills.Inc and failures.Inc do not
	// see them.
	unknownKills    prometheus.Counter
	lostFromReports prometheus.Counter
	// httpRefused counts API calls the door refused (http_guard.go).
	httpRefused *prometheus.CounterVec
	// batchEvents is the events per store write (group commit).
	batchEvents prometheus.Histogram
	// heartbeats counts agent heartbeats handled; unreachable, agents
	// declared unreachable; launchTimeouts, launches that timed out.
	heartbeats, unreachable, launchTimeouts prometheus.Counter
	// heartbeatsSettled counts heartbeats that repeated a report which
	// matched the state, handled without decoding them.
	heartbeatsSettled prometheus.Counter
}

func newMetrics(m *Master) *metrics {
	mt := &metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atoll_master_events_total", Help: "State events committed, by type.",
		}, []string{"type"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "atoll_master_commit_seconds", Help: "Time from a batch's first change until it is stored and published (one store write per batch).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		reconcile: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "atoll_master_reconcile_seconds", Help: "Time of one reconcile pass under the state lock.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		launches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atoll_master_task_launches_total", Help: "Tasks staged for launch.",
		}),
		kills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atoll_master_task_kills_total", Help: "Task kills sent to agents (an agent's kills go in one request: atoll_master_agent_requests_total).",
		}),
		agentRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atoll_master_agent_requests_total", Help: "Launch and kill requests sent to agents, by kind: one carries all an agent's launches (or kills) that a store write released.",
		}, []string{"kind"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atoll_master_task_failures_total", Help: "Tasks that ended without being asked to (they count for the launch backoff).",
		}),
		statusRecv: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atoll_master_status_updates_total", Help: "Task status updates received from agents.",
		}),
		lbReports: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atoll_master_lb_reports_total", Help: "Problems load-balancer sidecars reported (apps left out of HAProxy, refused templates).",
		}),
		unhealthyKills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atoll_master_unhealthy_kills_total", Help: "Tasks killed because a health check failed maxConsecutiveFailures times in a row.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atoll_master_refused_total", Help: "Messages refused because their sender may not say them, by reason.",
		}, []string{"reason"}),
		unknownKills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atoll_master_unknown_task_kills_total", Help: "Kills queued for tasks an agent reported that the master does not hold.",
		}),
		lostFromReports: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atoll_master_tasks_lost_from_reports_total", Help: "Tasks marked lost because their agent's report did not list them.",
		}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "atoll_master_commit_batch_events", Help: "Events made durable by one store write.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atoll_master_heartbeats_total", Help: "Agent heartbeats handled.",
		}),
		heartbeatsSettled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atoll_master_heartbeats_settled_total", Help: "Heartbeats that repeated a task report which matched the state, so were neither decoded nor reconciled.",
		}),
		unreachable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atoll_master_agents_unreachable_total", Help: "Agents declared unreachable because their heartbeats stopped.",
		}),
		launchTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "atoll_master_task_launch_timeouts_total", Help: "Tasks killed because they did not run within --task-launch-timeout.",
		}),
		httpRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atoll_master_http_refused_total", Help: "API calls refused: unauthorized, cross_origin or media_type.",
		}, []string{"reason"}),
	}
	mt.reg.MustRegister(mt.events, mt.commit, mt.reconcile, mt.launches, mt.kills, mt.agentRequests, mt.failures, mt.statusRecv, mt.lbReports, mt.unhealthyKills,
		mt.refused, mt.httpRefused, mt.unknownKills, mt.lostFromReports, mt.batchEvents, mt.heartbeats, mt.heartbeatsSettled, mt.unreachable, mt.launchTimeouts, &stateCollector{m: m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return mt
}

func (mt *metrics) handler() http.Handler {
	return promhttp.HandlerFor(mt.reg, promhttp.HandlerOpts{Registry: mt.reg})
}

// stateCollector reads gauges off the state at scrape time, so they can
// never drift from it.
type stateCollector struct{ m *Master }

var (
	descLeader      = prometheus.NewDesc("atoll_master_leader", "1 while this master leads.", nil, nil)
	descEpoch       = prometheus.NewDesc("atoll_master_epoch", "Current leader epoch.", nil, nil)
	descSeq         = prometheus.NewDesc("atoll_master_seq", "Seq of the last committed event.", nil, nil)
	descAgents      = prometheus.NewDesc("atoll_master_agents", "Agents by state.", []string{"state"}, nil)
	descTasks       = prometheus.NewDesc("atoll_master_tasks", "Tasks by state.", []string{"state"}, nil)
	descApps        = prometheus.NewDesc("atoll_master_apps", "Apps.", nil, nil)
	descInstances   = prometheus.NewDesc("atoll_master_instances_wanted", "Sum of the apps' instances.", nil, nil)
	descDeployments = prometheus.NewDesc("atoll_master_deployments", "Deployments in progress.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLeader, descEpoch, descSeq, descAgents, descTasks, descApps, descInstances, descDeployments} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	// The counts of tasks and apps come from the read view, without the
	// state's lock: a scrape walks 100,000 tasks and must not hold up a
	// write meanwhile.
	leading := 0.0
	agents := map[events.AgentState]int{events.AgentActive: 0, events.AgentUnreachable: 0}
	var epoch, seq uint64
	var deployments int
	c.m.View(func(s *events.State) {
		if c.m.leading {
			leading = 1
		}
		epoch, seq, deployments = s.Epoch, s.Seq, len(s.Deployments)
		for _, a := range s.Agents {
			agents[a.State]++
		}
	})
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, leading)
	ch <- prometheus.MustNewConstMetric(descEpoch, prometheus.GaugeValue, float64(epoch))
	ch <- prometheus.MustNewConstMetric(descSeq, prometheus.GaugeValue, float64(seq))
	for st, n := range agents {
		ch <- prometheus.MustNewConstMetric(descAgents, prometheus.GaugeValue, float64(n), string(st))
	}
	tasks := map[events.TaskState]int{events.TaskRunning: 0, events.TaskStaging: 0, events.TaskUnreachable: 0}
	apps, wanted := 0, 0
	for _, e := range c.m.reads.load().apps {
		for i := range e.tasks.tasks {
			tasks[e.tasks.tasks[i].State]++
		}
		if e.app != nil {
			apps++
			wanted += e.app.Instances
		}
	}
	for st, n := range tasks {
		ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(n), string(st))
	}
	ch <- prometheus.MustNewConstMetric(descApps, prometheus.GaugeValue, float64(apps))
	ch <- prometheus.MustNewConstMetric(descInstances, prometheus.GaugeValue, float64(wanted))
	ch <- prometheus.MustNewConstMetric(descDeployments, prometheus.GaugeValue, float64(deployments))
}

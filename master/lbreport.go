package master

import (
	"encoding/json"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// lbReportEvent is an events.LBReport as /v2/events shows it: atoll's own
// event type, in Marathon's event shape (eventType, timestamp).
type lbReportEvent struct {
	events.LBReport
	EventType string   `json:"eventType"`
	Timestamp jsonTime `json:"timestamp"`
}

// handleLBReport relays a load-balancer sidecar's report (an app it left
// out of HAProxy, a template set it refused) to the event stream, so the
// operator sees it where they watch deployments.
// The node is the one NATS let publish the subject, not the body's.
func (m *Master) handleLBReport(msg *nats.Msg) {
	node, ok := m.cfg.Subjects.LBReportNode(msg.Subject)
	if !ok {
		m.refuse(refusedBadSubject, "subject", msg.Subject)
		return
	}
	var r events.LBReport
	if err := json.Unmarshal(msg.Data, &r); err != nil || r.Error == "" {
		m.refuse(refusedUndecodable, "node", node, "len", len(msg.Data), "err", err)
		return
	}
	r.Node = node
	ts := r.Time
	if ts.IsZero() {
		ts = m.cfg.Now()
	}
	m.metrics.lbReports.Inc()
	m.log.Warn("load balancer reports a problem", "node", r.Node, "app", r.AppID, "port", r.PortIndex, "err", r.Error)
	m.sse.notice([]sseFrame{frame("", "lb_report_event", lbReportEvent{LBReport: r, EventType: "lb_report_event", Timestamp: jsonTime(ts)})})
}

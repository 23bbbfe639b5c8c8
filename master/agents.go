package master

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/natsbus"
)

// subscribe answers agents and followers on NATS.
func (m *Master) subscribe() ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	add := func(subject string, h nats.MsgHandler) error {
		s, err := m.cfg.NC.Subscribe(subject, h)
		if err != nil {
			return fmt.Errorf("master: subscribe %s: %w", subject, err)
		}
		subs = append(subs, s)
		return nil
	}
	snap, err := natsbus.ServeSnapshots(m.cfg.NC, m.cfg.Subjects, m.snapshot, func(reply string) {
		m.refuse(refusedReplySubject, "subject", m.cfg.Subjects.Snapshot(), "reply", reply)
	})
	if err != nil {
		return nil, err
	}
	subs = append(subs, snap)
	handlers := []struct {
		subject string
		h       nats.MsgHandler
	}{
		{m.cfg.Subjects.FromAgents(events.VerbHeartbeat), m.handleHeartbeat},
		{m.cfg.Subjects.LBReports(), m.handleLBReport},
	}
	for _, sub := range handlers {
		if err := add(sub.subject, sub.h); err != nil {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
			return nil, err
		}
	}
	// A registration is answered once durable, and one handler would
	// wait out a store write per agent: a fleet registering after a
	// restart would register one fsync at a time. Several handlers in a
	// queue group wait together and share store writes (group commit).
	// Status updates are acked by the committer and do not wait, but
	// decode in parallel too. An agent sends its next update only after
	// the last one's ack, so each agent's updates still arrive in order.
	queued := []struct {
		verb string
		h    nats.MsgHandler
	}{
		{events.VerbStatus, m.handleStatus},
		{events.VerbRegister, m.handleRegister},
	}
	for _, q := range queued {
		subject := m.cfg.Subjects.FromAgents(q.verb)
		for range sharedWriteHandlers {
			s, err := m.cfg.NC.QueueSubscribe(subject, q.verb, q.h)
			if err != nil {
				for _, s := range subs {
					_ = s.Unsubscribe()
				}
				return nil, fmt.Errorf("master: subscribe %s: %w", subject, err)
			}
			subs = append(subs, s)
		}
	}
	return subs, m.cfg.NC.Flush()
}

// sharedWriteHandlers is how many status updates, and how many
// registrations, are handled at once.
const sharedWriteHandlers = 16

// snapshot is the state as published, with the digest at it: followers
// get nothing that is not durable yet.
func (m *Master) snapshot() (events.Snapshot, error) { return m.publishedState() }

// respond answers a request. Only an inbox gets an answer: a reply
// subject elsewhere would make the master publish where its requester may
// not (events.IsInbox), and is refused and counted.
func (m *Master) respond(msg *nats.Msg, v any) {
	if msg.Reply == "" {
		return // a publish, not a request
	}
	if !events.IsInbox(msg.Reply) {
		m.refuse(refusedReplySubject, "subject", msg.Subject, "reply", msg.Reply)
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte(`{"error":"encode reply"}`)
	}
	_ = msg.Respond(data)
}

func (m *Master) handleRegister(msg *nats.Msg) {
	node, ok := m.senderNode(msg)
	if !ok {
		return
	}
	var req events.RegisterRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		m.refuse(refusedUndecodable, "node", node, "err", err)
		m.respond(msg, events.RegisterReply{Error: "bad register request: " + err.Error()})
		return
	}
	id, err := m.registerAgent(node, req)
	if err != nil {
		m.log.Warn("agent registration refused", "node", node, "hostname", req.Hostname, "err", err)
		m.respond(msg, events.RegisterReply{Error: err.Error()})
		return
	}
	m.respond(msg, events.RegisterReply{AgentID: id})
}

// errNotYours refuses a message a node sent about another node.
var errNotYours = fmt.Errorf("%w: not this node's", errRefused)

// errRefused is a message the master will never accept, whoever sends it
// again: it is answered with a refusal (events.AckRefused), not left to
// be retried.
var errRefused = errors.New("refused")

// registerAgent adds or refreshes the agent of node and reconciles the
// tasks it reports. An agent keeps its id across restarts; an id the master
// does not know (its record was removed) is taken as given, so ids stay
// stable. A node registers only as itself: its hostname is its
// credential's name, and an id the state gives another node is refused.
func (m *Master) registerAgent(node string, req events.RegisterRequest) (_ string, err error) {
	if req.Hostname == "" || req.IP == "" {
		return "", fmt.Errorf("register: hostname and ip are required")
	}
	if events.NodeToken(req.Hostname) != node {
		m.refuse(refusedHostname, "node", node, "hostname", req.Hostname)
		return "", fmt.Errorf("register: hostname %q is not this agent's credential (%s): %w", req.Hostname, node, errNotYours)
	}
	// The reply goes once the registration is durable.
	defer m.writeLocked()(&err)
	now := m.cfg.Now()
	id := req.AgentID
	a, known := m.state.Agents[id]
	if known && !m.agentIsNodeLocked(id, node) {
		m.refuse(refusedOtherAgent, "node", node, "agent", id, "owner", a.Hostname)
		return "", fmt.Errorf("register: agent %s belongs to another node: %w", id, errNotYours)
	}
	if known && a.State == events.AgentGone {
		// Marked gone: it starts over as a new agent, and the tasks it
		// reports, unknown under the new id, are killed below.
		m.log.Info("agent marked gone registers again; new id", "previous", id, "hostname", req.Hostname)
		id, known = "", false
	}
	if id == "" {
		id = newAgentID(len(m.state.Agents))
	}
	if !known {
		a = events.Agent{ID: id, RegisteredAt: now.UTC()}
	}
	a.Hostname, a.IP, a.Resources, a.Attributes = req.Hostname, req.IP, req.Resources, req.Attributes
	a.Containers = req.Containers
	a.State = events.AgentActive
	if err := m.commitLocked(events.PutAgent(a)); err != nil {
		return "", fmt.Errorf("register agent %s: %w", id, err)
	}
	m.live.heardFrom(id, node, now)
	m.log.Info("agent registered", "id", id, "hostname", a.Hostname, "ip", a.IP, "returning", known)
	m.reconcileReportsLocked(id, &agentReport{tasks: req.Tasks, launches: req.Launches, at: now}, now)
	m.kickReconcile()
	return id, nil
}

// newAgentID makes a Mesos-looking agent id: <uuid>-S<n>.
func newAgentID(n int) string { return fmt.Sprintf("%s-S%d", uuid.NewString(), n) }

// handleHeartbeat answers a heartbeat without the state's lock (see
// liveness): its report waits for the next reconcile pass.
func (m *Master) handleHeartbeat(msg *nats.Msg) {
	m.metrics.heartbeats.Inc()
	node, ok := m.senderNode(msg)
	if !ok {
		return
	}
	if !m.leadingNow.Load() || !m.leaseHeld() {
		m.respond(msg, events.HeartbeatReply{})
		return
	}
	// Most heartbeats repeat the last one, which matched the state:
	// those cost a hash, not a decode and a comparison per task. One
	// that repeats the last while the state changed is not decoded again.
	now, sum := m.cfg.Now(), m.live.sum(msg.Data)
	switch m.live.repeated(node, sum, now) {
	case repeatSettled:
		m.metrics.heartbeatsSettled.Inc()
		m.respond(msg, events.HeartbeatReply{})
		return
	case repeatLast:
		m.respond(msg, events.HeartbeatReply{})
		return
	}
	hb, err := decodeHeartbeat(msg.Data)
	if err != nil {
		m.refuse(refusedUndecodable, "node", node, "err", err)
		return
	}
	switch verdict, owner := m.live.heartbeat(hb.AgentID, node, now, hb.Tasks, hb.Launches, sum); verdict {
	case heartbeatNotYours:
		m.refuse(refusedOtherAgent, "node", node, "agent", hb.AgentID, "owner", owner)
		return
	case heartbeatReregister:
		// An unknown or unreachable agent comes back through
		// registration, which reconciles its tasks in one step.
		m.respond(msg, events.HeartbeatReply{Reregister: true})
		return
	}
	// No kick: the report waits for the next regular pass (at most
	// reconcileEvery), so a thousand agents' heartbeats do not make a
	// thousand passes a second.
	m.respond(msg, events.HeartbeatReply{})
}

// reportGrace is how old a task must be before its absence from an agent's
// report means it is lost, when the master has no ack of its launch to go
// by (a task it did not launch itself this term).
const reportGrace = 5 * time.Second

// maxReportsPerPass bounds the agents' reports one reconcile pass looks
// at, the oldest first: in a 10,000-instance scale-up every agent's report
// differs from the state (its new tasks are staging), and reconciling a
// thousand of them in every pass held the lock for seconds while the
// next thousand launches waited. A report keeps the time it came (its
// at), so looking at it a pass later judges it the same.
const maxReportsPerPass = 200

// reportAfterAck is how long after a launch's ack a report must arrive for
// the task's absence from it to count: the ack and the heartbeat travel
// on different subscriptions, so their order on arrival is not exact.
const reportAfterAck = time.Second

// applyReportsLocked reconciles the heartbeat reports that came in since
// the last pass.
func (m *Master) applyReportsLocked(now time.Time) {
	reports, more := m.live.takeReports(maxReportsPerPass)
	if more {
		m.kickReconcile() // the rest next pass, soon
	}
	ids := make([]string, 0, len(reports))
	for id := range reports {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if a, ok := m.state.Agents[id]; ok && a.State == events.AgentActive {
			m.reconcileReportsLocked(id, reports[id], now)
		}
	}
}

// reconcileReportsLocked brings the state in line with what an agent says
// it runs: unreachable tasks it still runs are running again, staging
// tasks it runs are adopted as running, tasks it runs that the state does
// not hold are killed, and tasks the state places there that it surely
// does not run are lost. A task is surely not run only when the report
// came after the agent had it: after its launch was acked, after it was
// reported running, after its kill was sent. A staging task the agent has
// not acked is never lost by a report; its launch times out instead.
func (m *Master) reconcileReportsLocked(agentID string, rep *agentReport, now time.Time) {
	// Most reports say what the state holds (a cost of a lookup per
	// task): they change nothing, and their repeats need not be looked at.
	if m.reportMatchesLocked(agentID, rep) {
		m.live.settle(agentID, rep.sum)
		return
	}
	reported := make(map[string]events.TaskReport, len(rep.tasks))
	held := 0 // tasks the state places here that the report names
	var changes []events.Change
	for _, r := range rep.tasks {
		t, ok := m.state.Tasks[r.TaskID]
		if _, dup := reported[r.TaskID]; !dup && ok && t.AgentID == agentID {
			held++
		}
		reported[r.TaskID] = r
		switch {
		case !ok || t.AgentID != agentID:
			if !r.State.Terminal() {
				m.killUnknownLocked(agentID, r.TaskID)
			}
		case r.State.Terminal():
			// The agent has not had its status update acked yet.
			changes = append(changes, m.taskStatusLocked(t, r.State, r.Message, nil, now)...)
		case t.State == events.TaskUnreachable && r.State == events.TaskRunning:
			t.State = events.TaskRunning
			t.Message = "agent reconnected"
			t.UnreachableSince = nil
			changes = append(changes, events.PutTask(t))
		case (t.State == events.TaskStaging || t.State == events.TaskStarting) && r.State == events.TaskRunning:
			// Its status update is still on its way: the agent is the
			// truth about what runs.
			changes = append(changes, m.taskStatusLocked(t, events.TaskRunning, r.Message, nil, now)...)
		}
	}
	// Only tasks the report does not name can be gone from the agent.
	var unreported []events.Task
	if held < m.state.CountTasksOn(agentID) {
		unreported = m.state.TasksOn(agentID)
	}
	for _, t := range unreported {
		if _, ok := reported[t.ID]; ok || !m.surelyGoneLocked(t, rep) {
			continue
		}
		if t.State == events.TaskKilling {
			t.State, t.Message = events.TaskKilled, "gone from agent after kill"
		} else {
			t.State, t.Message = events.TaskLost, "agent does not run the task"
			m.metrics.lostFromReports.Inc()
			if app, ok := m.state.Apps[t.AppID]; ok {
				m.runtime.failed(app, now)
			}
		}
		changes = append(changes, events.PutTask(t))
	}
	if len(changes) > 0 {
		if err := m.commitLocked(changes...); err != nil {
			m.log.Warn("reconcile agent tasks", "agent", agentID, "err", err)
		}
		m.kickReconcile()
	}
}

// reportMatchesLocked reports whether an agent's report says exactly what
// the state holds: every task the state places there reported in the
// state it has, running, and nothing else. Only then can the same report
// again change nothing, whatever the time.
func (m *Master) reportMatchesLocked(agentID string, rep *agentReport) bool {
	if m.state.CountTasksOn(agentID) != len(rep.tasks) {
		return false
	}
	for _, r := range rep.tasks {
		t, ok := m.state.Tasks[r.TaskID]
		if !ok || t.AgentID != agentID || r.State != events.TaskRunning || t.State != events.TaskRunning {
			return false
		}
	}
	return true
}

// surelyGoneLocked reports whether report rep, which lacks task t, means
// the agent does not run it. For a task whose launch was acked, the
// report's LaunchMark says whether it was made after the agent took the
// task, whenever the master handles it (a busy master handled heartbeats
// made before a launch more than a second after its ack, and killed
// tasks the agents ran); an agent that gives no mark, or one restarted
// since (another run), is judged by when the report came.
func (m *Master) surelyGoneLocked(t events.Task, rep *agentReport) bool {
	at := rep.at
	if t.State == events.TaskKilling {
		sent, ok := m.runtime.killSent[t.ID]
		return ok && at.Sub(sent) >= reportAfterAck
	}
	ack, acked := m.live.ackOf(t.ID)
	if acked {
		if covers, known := rep.launches.Covers(ack.mark); known {
			return covers
		}
		return at.Sub(ack.at) >= reportAfterAck
	}
	if t.State == events.TaskStaging || t.State == events.TaskStarting {
		return false // not acked: its launch times out instead
	}
	if t.StartedAt != nil && at.Sub(*t.StartedAt) < reportAfterAck {
		return false
	}
	return at.Sub(t.StagedAt) >= reportGrace
}

// killUnknownLocked queues a kill for a task the state does not hold; the
// reconcile loop sends it.
func (m *Master) killUnknownLocked(agentID, taskID string) {
	if _, queued := m.runtime.orphans[taskID]; queued {
		return
	}
	if sent, ok := m.runtime.killSent[taskID]; ok && m.cfg.Now().Sub(sent) < killResend {
		return
	}
	m.log.Info("killing task unknown to the master", "agent", agentID, "task", taskID)
	m.metrics.unknownKills.Inc()
	m.runtime.orphans[taskID] = agentID
	m.kickReconcile()
}

// expireAgentsLocked makes agents unreachable whose heartbeats stopped
// AgentTimeout ago or longer, and their tasks with them. It returns the
// next deadline of an agent still active (zero if none).
func (m *Master) expireAgentsLocked(now time.Time) time.Time {
	var next time.Time
	var expired []events.Agent
	for _, a := range m.state.Agents {
		if a.State != events.AgentActive {
			continue
		}
		seen := m.live.lastSeen(a.ID)
		if seen.IsZero() {
			seen = now
			m.live.set(a.ID, events.NodeToken(a.Hostname), true, now)
		}
		if deadline := seen.Add(m.cfg.AgentTimeout); now.Before(deadline) {
			if next.IsZero() || deadline.Before(next) {
				next = deadline
			}
			continue
		}
		expired = append(expired, a)
	}
	// Sorted, for a reproducible order of events; only the expired ones.
	slices.SortFunc(expired, func(x, y events.Agent) int { return strings.Compare(x.ID, y.ID) })
	for _, a := range expired {
		seen := m.live.lastSeen(a.ID)
		if now.Before(seen.Add(m.cfg.AgentTimeout)) {
			continue // a heartbeat came meanwhile
		}
		a.State = events.AgentUnreachable
		changes := []events.Change{events.PutAgent(a)}
		for _, t := range m.state.TasksOn(a.ID) {
			if !t.State.Active() {
				continue
			}
			t.State = events.TaskUnreachable
			t.Message = fmt.Sprintf("agent %s silent for %s", a.Hostname, now.Sub(seen).Round(time.Millisecond))
			since := now.UTC()
			t.UnreachableSince = &since
			changes = append(changes, events.PutTask(t))
		}
		m.log.Warn("agent unreachable", "id", a.ID, "hostname", a.Hostname, "silent", now.Sub(seen).Round(time.Millisecond), "tasks", len(changes)-1)
		m.metrics.unreachable.Inc()
		if err := m.commitLocked(changes...); err != nil {
			m.log.Warn("mark agent unreachable", "agent", a.ID, "err", err)
			continue
		}
		m.live.set(a.ID, events.NodeToken(a.Hostname), false, now)
	}
	return next
}

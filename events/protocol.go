package events

import (
	"encoding/json"
	"errors"
	"time"
)

// Messages between agents and the leader. Agents only ever dial out: every
// exchange is a NATS publish or request over the agent's own connection.

// TaskReport is what an agent knows about one of its tasks.
// A task that ended stays in the agent's reports, with its final state and
// message, until the master acks that status update.
type TaskReport struct {
	TaskID  string    `json:"taskId"`
	AppID   string    `json:"appId"`
	State   TaskState `json:"state"`
	Message string    `json:"message,omitempty"`
	// Statistics is the task's usage, read from its cgroup; nil where the
	// agent isolates no tasks, or the task has ended.
	Statistics *ResourceStatistics `json:"statistics,omitempty"`
}

// ResourceStatistics is what a task used, as its agent measured it from
// the task's cgroup: the fields of Mesos's ResourceStatistics (the agent's
// /monitor/statistics) that an agent fills, under Mesos's names.
type ResourceStatistics struct {
	// Timestamp is when it was read, in seconds since the epoch.
	Timestamp             float64 `json:"timestamp"`
	CpusLimit             float64 `json:"cpus_limit,omitempty"`
	CpusUserTimeSecs      float64 `json:"cpus_user_time_secs"`
	CpusSystemTimeSecs    float64 `json:"cpus_system_time_secs"`
	CpusNrPeriods         uint64  `json:"cpus_nr_periods,omitempty"`
	CpusNrThrottled       uint64  `json:"cpus_nr_throttled,omitempty"`
	CpusThrottledTimeSecs float64 `json:"cpus_throttled_time_secs,omitempty"`
	MemTotalBytes         uint64  `json:"mem_total_bytes"`
	MemLimitBytes         uint64  `json:"mem_limit_bytes,omitempty"`
}

// RegisterRequest announces an agent. AgentID is empty on first contact and
// the id from earlier otherwise; Tasks lists what the agent runs, so the
// leader can reconcile a returning agent. Hostname must be the name of the
// agent's credential (the node token in the subject it is sent on): the
// master refuses any other.
type RegisterRequest struct {
	AgentID    string            `json:"agentId,omitempty"`
	Hostname   string            `json:"hostname"`
	IP         string            `json:"ip"`
	Resources  Resources         `json:"resources"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Containers ContainerPolicy   `json:"containers,omitzero"`
	Tasks      []TaskReport      `json:"tasks,omitempty"`
	// Launches is how far the agent had taken launches when it made
	// the Tasks list.
	Launches *LaunchMark `json:"launches,omitempty"`
}

// RegisterReply gives the agent its id.
type RegisterReply struct {
	AgentID string `json:"agentId,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Heartbeat says the agent is alive and which tasks it runs.
type Heartbeat struct {
	AgentID string       `json:"agentId"`
	Tasks   []TaskReport `json:"tasks"`
	// Launches is how far the agent had taken launches when it made
	// the Tasks list.
	Launches *LaunchMark `json:"launches,omitempty"`
}

// LaunchMark places an agent's reports and its launch acks in one order:
// Run names the agent process (new at every start), N counts the tasks
// that process took. A report whose mark is at or past a launch ack's,
// in the same run, was made with that task in hand, so a task missing
// from it is gone from the agent, however late the master handles the
// report. Without it the master can only go by when the report and the
// ack reached it, which a busy master gets wrong (a heartbeat made before
// a launch, handled a second after its ack).
type LaunchMark struct {
	Run string `json:"run"`
	N   uint64 `json:"n"`
}

// Covers reports whether a report marked m was made after the agent took
// the launch acked with mark ack; known is false when the two marks
// cannot be compared (either missing, or different agent processes).
func (m *LaunchMark) Covers(ack *LaunchMark) (covers, known bool) {
	if m == nil || ack == nil || m.Run == "" || m.Run != ack.Run {
		return false, false
	}
	return m.N >= ack.N, true
}

// HeartbeatReply tells an agent the leader does not know it, so it must
// register again (the leader lost it, or declared it gone).
type HeartbeatReply struct {
	Reregister bool `json:"reregister,omitempty"`
}

// StatusUpdate reports a task state change; the agent retries until acked.
type StatusUpdate struct {
	AgentID string    `json:"agentId"`
	TaskID  string    `json:"taskId"`
	State   TaskState `json:"state"`
	Message string    `json:"message,omitempty"`
	Healthy *bool     `json:"healthy,omitempty"`
	// Reason is Mesos's TaskStatus reason where the agent knows it
	// (ReasonMemoryLimit); empty otherwise.
	Reason string `json:"reason,omitempty"`
	// Ready is set when the task passed its readiness checks.
	Ready *bool `json:"ready,omitempty"`
	// HealthCheckResults, with Healthy, are the task's check results, one
	// per health check of its app in order; sent when a check's verdict
	// changes and when its consecutive failures reach the limit.
	HealthCheckResults []HealthCheckResult `json:"healthCheckResults,omitempty"`
	// IPAddresses are the task's own addresses (a bridged container's),
	// sent with TASK_RUNNING; empty for a task on the agent's network.
	IPAddresses []IPAddress `json:"ipAddresses,omitempty"`
	Time        time.Time   `json:"time"`
}

// Ack answers a request that needs no data back. Code says what kind of
// refusal Error is, so that the receiver never matches error text.
type Ack struct {
	Code  AckCode `json:"code,omitempty"`
	Error string  `json:"error,omitempty"`
}

// AckCode classifies a refused request.
type AckCode string

// The refusals an agent or the master acts on.
const (
	// AckBadRequest: the request did not decode or was incomplete.
	AckBadRequest AckCode = "bad_request"
	// AckUnknownTask: a kill for a task the agent does not run (it is
	// over).
	AckUnknownTask AckCode = "unknown_task"
	// AckTaskExists: a launch of a task the agent already runs (a resent
	// launch).
	AckTaskExists AckCode = "task_exists"
	// AckStopping: the agent is shutting down.
	AckStopping AckCode = "stopping"
	// AckRefused: anything else; Error says why.
	AckRefused AckCode = "refused"
)

// CodedError is an error with the AckCode that reports it.
type CodedError struct {
	Code AckCode
	Err  error
}

func (e *CodedError) Error() string { return e.Err.Error() }
func (e *CodedError) Unwrap() error { return e.Err }

// AckFor is the Ack that answers err: its code if it carries one
// (errors.As a *CodedError), AckRefused otherwise; the zero Ack for nil.
func AckFor(err error) Ack {
	if err == nil {
		return Ack{}
	}
	code := AckRefused
	var ce *CodedError
	if errors.As(err, &ce) {
		code = ce.Code
	}
	return Ack{Code: code, Error: err.Error()}
}

// LaunchRequest tells an agent to start a task. Env is complete: the agent
// adds only what it alone knows (PATH, sandbox).
type LaunchRequest struct {
	Task Task              `json:"task"`
	Cmd  string            `json:"cmd,omitempty"`
	Args []string          `json:"args,omitempty"`
	Env  map[string]string `json:"env"`
	// User is the app's user: the task runs as that user on the agent;
	// empty runs it as the agent's --default-user.
	User string `json:"user,omitempty"`
	// KillGracePeriod is how long a kill waits between SIGTERM and SIGKILL.
	KillGracePeriod time.Duration `json:"killGracePeriod"`
	// HealthChecks are the app's checks, defaults filled in; the agent
	// runs them while the task runs.
	HealthChecks []HealthCheck `json:"healthChecks,omitempty"`
	// Limits are what the agent holds the task to. nil (a leader from
	// before limits) runs the task in a cgroup of its own with no CPU or
	// memory limit.
	Limits *TaskLimits `json:"limits,omitempty"`
	// Fetch is downloaded into the sandbox before the task starts.
	Fetch []FetchURI `json:"fetch,omitempty"`
	// Readiness is the app's readiness check on this task's port; the
	// agent runs it from the start until the task is ready, and says so
	// once (StatusUpdate.Ready).
	Readiness *ReadinessProbe `json:"readiness,omitempty"`
	// Container runs the task from an image; nil runs Cmd on the host.
	Container *ContainerLaunch `json:"container,omitempty"`
}

// ReadinessProbe is a readiness check as an agent runs it: a GET of
// scheme://<agent's address>:Port/Path every Interval until a status in
// Codes comes back within Timeout.
type ReadinessProbe struct {
	Protocol string        `json:"protocol"` // HTTP or HTTPS
	Path     string        `json:"path"`
	Port     int           `json:"port"`
	Interval time.Duration `json:"interval"`
	Timeout  time.Duration `json:"timeout"`
	Codes    []int         `json:"codes"`
}

// ReasonMemoryLimit is Mesos's reason for a task the kernel's OOM killer
// ended: it went past its memory limit.
const ReasonMemoryLimit = "REASON_CONTAINER_LIMITATION_MEMORY"

// TaskLimits are a task's resources as its agent enforces them: the app's
// cpus (CPU shares 1024 per cpu, and a CFS quota of cpus × 100 ms per
// 100 ms) and mem in MB (the memory limit; past it the kernel kills the
// task), as Mesos's cgroups isolators do.
type TaskLimits struct {
	Cpus float64 `json:"cpus"`
	Mem  float64 `json:"mem"`
}

// KillRequest tells an agent to kill a task.
type KillRequest struct {
	TaskID          string        `json:"taskId"`
	KillGracePeriod time.Duration `json:"killGracePeriod,omitempty"`
}

// The leader sends an agent its launches, and its kills, in batches: one
// request and one reply where there would be one per task (a reconcile
// pass of 1,000 launches on 100 agents is 100 requests, not 1,000). A
// batch goes on the same subject as a lone request (Subjects.Launch,
// Subjects.Kill), so the NATS permissions are the same; the agent tells
// them apart by shape (DecodeLaunches, DecodeKills) and still takes a
// lone request, from a leader that predates batches. An agent that
// predates them answers a batch with a plain Ack (it finds no task id in
// it) and does nothing: AckBatch.Acks is then nil, and the leader sends
// that batch's requests one at a time.

// LaunchBatch tells an agent to start several tasks, each as a lone
// LaunchRequest would.
type LaunchBatch struct {
	Launches []LaunchRequest `json:"launches"`
}

// KillBatch tells an agent to kill several tasks, each as a lone
// KillRequest would.
type KillBatch struct {
	Kills []KillRequest `json:"kills"`
}

// TaskAck is the answer to one task's launch or kill in a batch.
type TaskAck struct {
	TaskID string `json:"taskId"`
	Ack
	// Launch is where the agent took the task, in a launch's ack
	// (LaunchMark).
	Launch *LaunchMark `json:"launch,omitempty"`
}

// AckBatch answers a LaunchBatch, a KillBatch or a StatusBatch: Acks[i]
// answers its i-th request. Acks is never nil in the answer to a batch
// that decoded; a reply without Acks is the Ack that refused the batch as
// a whole.
type AckBatch struct {
	Acks []TaskAck `json:"acks"`
	Ack
}

// launchMessage is either message an agent takes on its launch subject.
type launchMessage struct {
	Launches []LaunchRequest `json:"launches"`
	LaunchRequest
}

// DecodeLaunches reads what arrived on an agent's launch subject: a
// LaunchBatch (batch true) or a lone LaunchRequest (one request, batch
// false). A lone request is returned as sent, to be checked as before.
func DecodeLaunches(data []byte) (reqs []LaunchRequest, batch bool, err error) {
	var msg launchMessage
	if err := json.Unmarshal(data, &msg); err != nil {
		return nil, false, err
	}
	if msg.Launches == nil {
		return []LaunchRequest{msg.LaunchRequest}, false, nil
	}
	if msg.Task.ID != "" {
		return nil, true, errors.New("both a batch of launches and a lone launch")
	}
	return msg.Launches, true, nil
}

// killMessage is either message an agent takes on its kill subject.
type killMessage struct {
	Kills []KillRequest `json:"kills"`
	KillRequest
}

// DecodeKills is DecodeLaunches for the kill subject.
func DecodeKills(data []byte) (reqs []KillRequest, batch bool, err error) {
	var msg killMessage
	if err := json.Unmarshal(data, &msg); err != nil {
		return nil, false, err
	}
	if msg.Kills == nil {
		return []KillRequest{msg.KillRequest}, false, nil
	}
	if msg.TaskID != "" {
		return nil, true, errors.New("both a batch of kills and a lone kill")
	}
	return msg.Kills, true, nil
}

// An agent sends the master its queued status updates in batches, as the
// leader sends launches and kills: one request and one reply where there
// would be one per update (a scale-up's thousands of TASK_RUNNING are a
// few requests per agent, not one round trip each). A batch goes on the
// same subject as a lone update (Subjects.Status), so the NATS
// permissions are the same; the master tells them apart by shape
// (DecodeStatuses) and still takes a lone update, from an agent that
// predates batches. A master that predates them finds no task id in a
// batch, records nothing and answers a plain Ack: AckBatch.Acks is then
// nil, and the agent sends those updates one at a time.

// StatusBatch is several status updates of one agent, in the order the
// agent queued them; each is checked and applied as a lone StatusUpdate
// would be, in that order.
type StatusBatch struct {
	Updates []StatusUpdate `json:"updates"`
}

// The master answers a StatusBatch with an AckBatch once what it recorded
// is durable: Acks[i] (TaskID set) answers Updates[i]. An Ack carrying an
// error is still an ack: the master refused that update for good. Acks
// may be shorter than Updates: the updates past its end were not
// recorded (the master stopped at one it could not stage) and are to be
// sent again, in order.

// statusMessage is either message the master takes on the status subject.
type statusMessage struct {
	Updates []StatusUpdate `json:"updates"`
	StatusUpdate
}

// DecodeStatuses reads what arrived on the status subject: a StatusBatch
// (batch true) or a lone StatusUpdate (one update, batch false).
func DecodeStatuses(data []byte) (ups []StatusUpdate, batch bool, err error) {
	var msg statusMessage
	if err := json.Unmarshal(data, &msg); err != nil {
		return nil, false, err
	}
	if msg.Updates == nil {
		return []StatusUpdate{msg.StatusUpdate}, false, nil
	}
	if msg.TaskID != "" {
		return nil, true, errors.New("both a batch of status updates and a lone update")
	}
	return msg.Updates, true, nil
}

// SnapshotReply answers a snapshot request: the leader's state (redacted)
// and its digest chain at the state's (epoch, seq).
type SnapshotReply struct {
	State  *State `json:"state,omitempty"`
	Digest Digest `json:"digest,omitzero"`
	Error  string `json:"error,omitempty"`
}

// LBReport is what a load-balancer sidecar publishes on Subjects.LBReport
// when it leaves an app out of HAProxy's config or refuses a template set.
// It is a notice, not state: the master relays it to /v2/events as
// "lb_report_event" and nothing replays it.
type LBReport struct {
	// Node names the sidecar (its hostname or --node flag).
	Node string `json:"node"`
	// AppID and PortIndex say which app port was left out; AppID is empty
	// for a problem that is not an app's (a broken template set), and
	// PortIndex is -1 when the whole app was left out.
	AppID     string    `json:"appId,omitempty"`
	PortIndex int       `json:"portIndex"`
	Error     string    `json:"error"`
	Time      time.Time `json:"timestamp"`
}

// Package events holds atoll's cluster state model, the events that change
// it, and the NATS transport that carries both. It is the one package every
// other part of atoll shares; it imports none of them.
//
// Records use Marathon's and Mesos's JSON field names wherever those exist,
// so that what travels on NATS is what users already know from the HTTP API.
package events

import "time"

// AgentState is the lifecycle of an agent as the master sees it.
type AgentState string

const (
	AgentActive      AgentState = "active"
	AgentUnreachable AgentState = "unreachable"
	AgentGone        AgentState = "gone"
)

// PortRange is an inclusive range of host ports, as Mesos offers them.
type PortRange struct {
	Begin int `json:"begin"`
	End   int `json:"end"`
}

// Resources are what an agent offers to tasks.
type Resources struct {
	Cpus  float64     `json:"cpus"`
	Mem   float64     `json:"mem"`
	Disk  float64     `json:"disk"`
	Ports []PortRange `json:"ports,omitempty"`
}

// Agent is a node that runs tasks. IP is the advertised address: what DNS
// and HAProxy point at, which need not be the address the agent dials from.
type Agent struct {
	ID         string            `json:"id"`
	Hostname   string            `json:"hostname"`
	IP         string            `json:"ip"`
	Resources  Resources         `json:"resources"`
	Attributes map[string]string `json:"attributes,omitempty"`
	// Containers is what the agent lets containers ask for beyond a
	// plain container (host volumes, capabilities).
	Containers   ContainerPolicy `json:"containers,omitzero"`
	State        AgentState      `json:"state"`
	RegisteredAt time.Time       `json:"registeredAt"`
}

// PortDefinition is one port of an app; Port is the service port.
type PortDefinition struct {
	Port     int               `json:"port"`
	Protocol string            `json:"protocol,omitempty"`
	Name     string            `json:"name,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// HealthCheck is Marathon's health check definition.
type HealthCheck struct {
	Protocol  string `json:"protocol"`
	Path      string `json:"path,omitempty"`
	PortIndex *int   `json:"portIndex,omitempty"`
	Port      *int   `json:"port,omitempty"`
	Command   *struct {
		Value string `json:"value"`
	} `json:"command,omitempty"`
	GracePeriodSeconds     int  `json:"gracePeriodSeconds"`
	IntervalSeconds        int  `json:"intervalSeconds"`
	TimeoutSeconds         int  `json:"timeoutSeconds"`
	MaxConsecutiveFailures int  `json:"maxConsecutiveFailures"`
	DelaySeconds           int  `json:"delaySeconds"`
	IgnoreHTTP1xx          bool `json:"ignoreHttp1xx,omitempty"`
}

// UpgradeStrategy bounds capacity during a rolling deployment.
type UpgradeStrategy struct {
	MinimumHealthCapacity float64 `json:"minimumHealthCapacity"`
	MaximumOverCapacity   float64 `json:"maximumOverCapacity"`
}

// App is a Marathon app definition. The master fills every default before an
// App enters the state, so consumers never guess. Env holds secrets: on
// NATS (events, snapshots) it is always empty (see Redacted); only launch
// requests and the HTTP API carry it. Each field has its entry in the
// master's app schema (master/appdef_schema.go: how it is read, merged,
// checked and shown); a test there fails until it has.
type App struct {
	ID                         string            `json:"id"`
	Cmd                        string            `json:"cmd,omitempty"`
	Args                       []string          `json:"args,omitempty"`
	User                       string            `json:"user,omitempty"`
	Instances                  int               `json:"instances"`
	Cpus                       float64           `json:"cpus"`
	Mem                        float64           `json:"mem"`
	Disk                       float64           `json:"disk"`
	PortDefinitions            []PortDefinition  `json:"portDefinitions"`
	RequirePorts               bool              `json:"requirePorts"`
	Constraints                [][]string        `json:"constraints"`
	Labels                     map[string]string `json:"labels"`
	Env                        map[string]string `json:"env"`
	HealthChecks               []HealthCheck     `json:"healthChecks"`
	UpgradeStrategy            UpgradeStrategy   `json:"upgradeStrategy"`
	BackoffSeconds             float64           `json:"backoffSeconds"`
	BackoffFactor              float64           `json:"backoffFactor"`
	MaxLaunchDelaySeconds      float64           `json:"maxLaunchDelaySeconds"`
	TaskKillGracePeriodSeconds float64           `json:"taskKillGracePeriodSeconds,omitempty"`
	// Dependencies are the absolute ids of the apps and groups that a
	// deployment of several apps brings up (running and healthy) before
	// this one, as Marathon's; nil when there are none.
	Dependencies []string `json:"dependencies,omitempty"`
	// KillSelection is which tasks go first when the app scales down:
	// KillYoungestFirst (also when empty) or KillOldestFirst.
	KillSelection string `json:"killSelection,omitempty"`
	// Fetch is what the agent downloads into a task's sandbox before it
	// starts the task (Marathon's fetch, Mesos's fetcher).
	Fetch []FetchURI `json:"fetch,omitempty"`
	// ReadinessChecks say when a new task is ready to take over from an
	// old one in a deployment (Marathon's readinessChecks, at most one).
	ReadinessChecks []ReadinessCheck `json:"readinessChecks,omitempty"`
	// UnreachableStrategy says when a task whose agent went silent is
	// replaced and when it is forgotten (Marathon's); nil: replaced at
	// once, kept until its agent returns.
	UnreachableStrategy *UnreachableStrategy `json:"unreachableStrategy,omitempty"`
	// Container runs the app's tasks from an image (container.go); nil
	// runs Cmd on the host.
	Container *Container `json:"container,omitempty"`
	// Networks is Marathon's; nil or [{mode: host}] share the agent's
	// network.
	Networks []Network `json:"networks,omitempty"`
	// Version changes on every update; VersionInfo says which changes
	// replaced tasks (config) and which did not (scaling).
	Version     time.Time   `json:"version"`
	VersionInfo VersionInfo `json:"versionInfo"`
}

// ReadinessCheck is Marathon's readinessCheck (readinessCheck.raml): an
// HTTP(S) GET of path on the task's port named portName, every interval,
// until it answers with one of the ready status codes.
type ReadinessCheck struct {
	Name                    string `json:"name"`
	Protocol                string `json:"protocol"`
	Path                    string `json:"path"`
	PortName                string `json:"portName"`
	IntervalSeconds         int    `json:"intervalSeconds"`
	TimeoutSeconds          int    `json:"timeoutSeconds"`
	HTTPStatusCodesForReady []int  `json:"httpStatusCodesForReady"`
	PreserveLastResponse    bool   `json:"preserveLastResponse"`
}

// UnreachableStrategy is Marathon's: an unreachable task is replaced
// (inactive) InactiveAfterSeconds after its agent went silent, and
// forgotten (expunged: killed should it come back)
// ExpungeAfterSeconds after. Disabled (Marathon's "disabled") does
// neither.
type UnreachableStrategy struct {
	InactiveAfterSeconds float64 `json:"inactiveAfterSeconds"`
	ExpungeAfterSeconds  float64 `json:"expungeAfterSeconds"`
	Disabled             bool    `json:"disabled,omitempty"`
}

// FetchURI is one artifact of an app's fetch (Marathon's artifact.raml).
type FetchURI struct {
	URI        string `json:"uri"`
	Extract    bool   `json:"extract"`
	Executable bool   `json:"executable"`
	Cache      bool   `json:"cache"`
	DestPath   string `json:"destPath,omitempty"`
}

// Marathon's killSelection values.
const (
	KillYoungestFirst = "YOUNGEST_FIRST"
	KillOldestFirst   = "OLDEST_FIRST"
)

// VersionInfo is Marathon's split between a scaling change and a config change.
type VersionInfo struct {
	LastScalingAt      time.Time `json:"lastScalingAt"`
	LastConfigChangeAt time.Time `json:"lastConfigChangeAt"`
}

// ServicePorts lists the app's service ports in port-definition order.
func (a *App) ServicePorts() []int {
	specs := a.PortSpecs()
	ports := make([]int, len(specs))
	for i, pd := range specs {
		ports[i] = pd.Port
	}
	return ports
}

// TaskState is a Mesos task state.
type TaskState string

const (
	TaskStaging     TaskState = "TASK_STAGING"
	TaskStarting    TaskState = "TASK_STARTING"
	TaskRunning     TaskState = "TASK_RUNNING"
	TaskFinished    TaskState = "TASK_FINISHED"
	TaskFailed      TaskState = "TASK_FAILED"
	TaskKilling     TaskState = "TASK_KILLING"
	TaskKilled      TaskState = "TASK_KILLED"
	TaskLost        TaskState = "TASK_LOST"
	TaskError       TaskState = "TASK_ERROR"
	TaskUnreachable TaskState = "TASK_UNREACHABLE"
	TaskGone        TaskState = "TASK_GONE"
)

// intern returns the constant equal to s, so that a decoded state does not
// hold its own copy of the string; an unknown state is returned as is.
func (s TaskState) intern() TaskState {
	for _, c := range taskStates {
		if s == c {
			return c
		}
	}
	return s
}

var taskStates = [...]TaskState{
	TaskRunning, TaskStaging, TaskStarting, TaskKilling, TaskFinished, TaskFailed,
	TaskKilled, TaskLost, TaskError, TaskUnreachable, TaskGone,
}

// Terminal reports whether a task in this state will never run again.
func (s TaskState) Terminal() bool {
	switch s {
	case TaskFinished, TaskFailed, TaskKilled, TaskLost, TaskError, TaskGone:
		return true
	}
	return false
}

// ReportedByAgents reports whether an agent may say a task is in this
// state: the master alone stages tasks and declares them unreachable or
// gone, and a state Mesos does not have is nobody's.
func (s TaskState) ReportedByAgents() bool {
	switch s {
	case TaskStarting, TaskRunning, TaskKilling, TaskFinished, TaskFailed, TaskKilled, TaskLost, TaskError:
		return true
	}
	return false
}

// Active reports whether the task holds (or is about to hold) its resources
// on a reachable agent: staging, starting, running or being killed.
func (s TaskState) Active() bool {
	switch s {
	case TaskStaging, TaskStarting, TaskRunning, TaskKilling:
		return true
	}
	return false
}

// IPAddress is Marathon's task address entry.
type IPAddress struct {
	IPAddress string `json:"ipAddress"`
	Protocol  string `json:"protocol"`
}

// HealthCheckResult is Marathon's per-check result on a task.
type HealthCheckResult struct {
	Alive               bool       `json:"alive"`
	ConsecutiveFailures int        `json:"consecutiveFailures"`
	FirstSuccess        *time.Time `json:"firstSuccess"`
	LastFailure         *time.Time `json:"lastFailure"`
	LastSuccess         *time.Time `json:"lastSuccess"`
	LastFailureCause    string     `json:"lastFailureCause,omitempty"`
	TaskID              string     `json:"taskId"`
}

// Task is one running (or once running) instance of an app.
type Task struct {
	ID                 string              `json:"id"`
	AppID              string              `json:"appId"`
	AgentID            string              `json:"slaveId"`
	Host               string              `json:"host"`
	IPAddresses        []IPAddress         `json:"ipAddresses"`
	Ports              []int               `json:"ports"`
	ServicePorts       []int               `json:"servicePorts"`
	State              TaskState           `json:"state"`
	Message            string              `json:"message,omitempty"`
	Healthy            *bool               `json:"healthy,omitempty"`
	HealthCheckResults []HealthCheckResult `json:"healthCheckResults,omitempty"`
	StagedAt           time.Time           `json:"stagedAt"`
	StartedAt          *time.Time          `json:"startedAt"`
	Version            time.Time           `json:"version"`
	// ConfigVersion is the app's lastConfigChangeAt the task was launched
	// with: a task is of the app's current config when they are equal, so
	// a rollback to an older config makes its old tasks current again.
	ConfigVersion time.Time `json:"configVersion,omitzero"`
	Cpus          float64   `json:"cpus"`
	Mem           float64   `json:"mem"`
	Disk          float64   `json:"disk"`
	// Ready is whether the task passed its app's readiness checks, once
	// its agent has said; nil for apps without them.
	Ready *bool `json:"ready,omitempty"`
	// UnreachableSince is when the task became TASK_UNREACHABLE.
	UnreachableSince *time.Time `json:"unreachableSince,omitempty"`
	// Region and Zone are the agent's, when it has them (its attributes
	// "region" and "zone").
	Region string `json:"region,omitempty"`
	Zone   string `json:"zone,omitempty"`
}

// Leader is the master that currently writes the state.
type Leader struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	IP       string `json:"ip"`
	Port     int    `json:"port"`
	Epoch    uint64 `json:"epoch"`
}

// DeploymentAction is one step action, as in Marathon's /v2/deployments.
type DeploymentAction struct {
	Action string `json:"action"`
	App    string `json:"app"`
	// Waiting says why the action cannot progress (for example no agent
	// satisfies the constraints); empty while it progresses.
	Waiting string `json:"waiting,omitempty"`
}

// DeploymentStep groups the actions that run together.
type DeploymentStep struct {
	Actions []DeploymentAction `json:"actions"`
}

// Deployment is a change in progress: the master removes it when the
// affected apps have converged.
type Deployment struct {
	ID             string             `json:"id"`
	Version        time.Time          `json:"version"`
	AffectedApps   []string           `json:"affectedApps"`
	Steps          []DeploymentStep   `json:"steps"`
	CurrentActions []DeploymentAction `json:"currentActions"`
	CurrentStep    int                `json:"currentStep"`
	TotalSteps     int                `json:"totalSteps"`
	// Original is the app as it was before this deployment (nil for a new
	// app): what DELETE /v2/deployments/{id} rolls back to.
	Original *App `json:"original,omitempty"`
	// Failed says why the deployment stopped making progress; it then
	// holds still, old tasks serving, until it is rolled back or replaced.
	Failed string `json:"failed,omitempty"`
	// Group is the group a /v2/groups change was made in (the parent of
	// the URL's group, as Marathon's GroupsResource hands it to
	// updateRoot), empty for a change to one app (made in the app's
	// group): Marathon's group_change_success names it.
	Group string `json:"group,omitempty"`
	// Originals are the apps a deployment of several apps changed or
	// removed, as they were before it (what a rollback restores); apps
	// it created are not among them. A one-app deployment uses Original.
	Originals []App `json:"originals,omitempty"`
	// OriginalGroups are the group records the deployment changed or
	// removed, as they were before it; the ones it created have it as
	// their first version.
	OriginalGroups []Group `json:"originalGroups,omitempty"`
}

// Group is a Marathon group that exists in its own right: created through
// /v2/groups, possibly empty, or given dependencies there. Groups that
// only hold apps need no record: the API derives them from the app ids
// (an app /a/b/c lives in group /a/b).
type Group struct {
	ID string `json:"id"`
	// Dependencies are absolute app or group ids that every app below
	// this group depends on.
	Dependencies []string  `json:"dependencies,omitempty"`
	Version      time.Time `json:"version"`
	// Versions are the group's versions, newest first, the current one
	// included; the master keeps a bounded number of them.
	Versions []time.Time `json:"versions,omitempty"`
}

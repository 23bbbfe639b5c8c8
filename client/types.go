package client

import (
	"encoding/json"
	"strings"

	"github.com/atollhq/atoll/events"
)

// DeploymentRef names a deployment, as in an app's "deployments" list.
type DeploymentRef struct {
	ID string `json:"id"`
}

// App is an app as the API returns it: the definition (events.App, in
// Marathon's field names) plus the counts, deployments and tasks that
// /v2/apps embeds. Raw is the app's JSON object exactly as received.
type App struct {
	events.App
	TasksRunning   int             `json:"tasksRunning"`
	TasksStaged    int             `json:"tasksStaged"`
	TasksHealthy   int             `json:"tasksHealthy"`
	TasksUnhealthy int             `json:"tasksUnhealthy"`
	Deployments    []DeploymentRef `json:"deployments"`
	Tasks          []Task          `json:"tasks"`

	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the app and keeps its raw JSON.
func (a *App) UnmarshalJSON(data []byte) error {
	type plain App
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*a = App(p)
	a.Raw = append(json.RawMessage(nil), data...)
	return nil
}

// Running is the number of running tasks: tasksRunning, or, when the server
// sent no counts but did send the tasks, the running ones among them.
func (a *App) Running() int {
	if a.TasksRunning == 0 && len(a.Tasks) > 0 {
		n := 0
		for _, t := range a.Tasks {
			if t.State == events.TaskRunning {
				n++
			}
		}
		return n
	}
	return a.TasksRunning
}

// Task is a task as the API returns it (Marathon's field names). Raw is the
// task's JSON object exactly as received.
type Task struct {
	events.Task

	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the task and keeps its raw JSON.
func (t *Task) UnmarshalJSON(data []byte) error {
	var p events.Task
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	t.Task = p
	t.Raw = append(json.RawMessage(nil), data...)
	return nil
}

// Deployment is an entry of /v2/deployments (Marathon's shape).
type Deployment = events.Deployment

// State is the part of the Mesos-style /master/state the client uses.
type State struct {
	Version  string  `json:"version"`
	Leader   string  `json:"leader"` // "master@ip:port"
	Hostname string  `json:"hostname"`
	Slaves   []Slave `json:"slaves"`
	// Frameworks are kept as received.
	Frameworks []json.RawMessage `json:"frameworks"`
}

// LeaderHostPort is the leader's "ip:port", from "master@ip:port".
func (s *State) LeaderHostPort() string { return pidHostPort(s.Leader) }

// Slave is a Mesos agent entry of /master/state. Raw is the entry's JSON
// object exactly as received.
type Slave struct {
	ID             string         `json:"id"`
	Hostname       string         `json:"hostname"`
	PID            string         `json:"pid"` // "slave(1)@ip:port"
	Port           int            `json:"port"`
	Resources      MesosResources `json:"resources"`
	UsedResources  MesosResources `json:"used_resources"`
	Attributes     map[string]any `json:"attributes"`
	Active         bool           `json:"active"`
	RegisteredTime float64        `json:"registered_time"`
	Version        string         `json:"version"`
	// Usage is atoll's own: what the agent's tasks use, measured from
	// their cgroups; nil until the agent reported it.
	Usage *SlaveUsage `json:"usage,omitempty"`

	Raw json.RawMessage `json:"-"`
}

// SlaveUsage is what an agent's tasks use: cpus in cores, mem in MB.
type SlaveUsage struct {
	Cpus      float64 `json:"cpus"`
	Mem       float64 `json:"mem"`
	Timestamp float64 `json:"timestamp"`
}

// UnmarshalJSON decodes the agent entry and keeps its raw JSON.
func (s *Slave) UnmarshalJSON(data []byte) error {
	type plain Slave
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*s = Slave(p)
	s.Raw = append(json.RawMessage(nil), data...)
	return nil
}

// IP is the agent's address, taken from its pid ("slave(1)@ip:port").
func (s *Slave) IP() string {
	hp := pidHostPort(s.PID)
	if i := strings.LastIndex(hp, ":"); i >= 0 {
		hp = hp[:i]
	}
	return strings.Trim(hp, "[]")
}

func pidHostPort(pid string) string {
	if i := strings.LastIndex(pid, "@"); i >= 0 {
		return pid[i+1:]
	}
	return pid
}

// MesosResources are Mesos scalar resources; Ports is Mesos's range text,
// for example "[31000-32000, 33000-33100]".
type MesosResources struct {
	Cpus  float64 `json:"cpus"`
	Mem   float64 `json:"mem"`
	Disk  float64 `json:"disk"`
	Gpus  float64 `json:"gpus"`
	Ports string  `json:"ports"`
}

// Info is Marathon's /v2/info; the config sections are kept as received.
type Info struct {
	Name            string          `json:"name"`
	Version         string          `json:"version"`
	Buildref        string          `json:"buildref"`
	Elected         bool            `json:"elected"`
	Leader          string          `json:"leader"`
	FrameworkID     string          `json:"frameworkId"`
	MarathonConfig  json.RawMessage `json:"marathon_config"`
	ZookeeperConfig json.RawMessage `json:"zookeeper_config"`
	HTTPConfig      json.RawMessage `json:"http_config"`
}

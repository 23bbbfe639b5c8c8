package master

import (
	"strings"

	"github.com/atollhq/atoll/events"
)

// A task of /master/state as Mesos's master serves a task Marathon
// launched: Mesos's json(Task) in src/common/http.cpp writes the fields,
// with labels as an array of {key, value} and discovery as the
// DiscoveryInfo protobuf in JSON; Marathon's TaskBuilder fills the
// TaskInfo (name and discovery name from the app id, discovery ports from
// the port definitions with the task's host ports, labels from the app's).
// Mesos-DNS reads these to make its names (records/state/state.go).

type mesosTask struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	FrameworkID string         `json:"framework_id"`
	ExecutorID  string         `json:"executor_id"`
	SlaveID     string         `json:"slave_id"`
	State       string         `json:"state"`
	Resources   mesosResources `json:"resources"`
	Role        string         `json:"role"`
	Statuses    []mesosStatus  `json:"statuses"`
	Labels      []mesosLabel   `json:"labels,omitempty"`
	Discovery   mesosDiscovery `json:"discovery"`
}

type mesosStatus struct {
	State           string                `json:"state"`
	Timestamp       float64               `json:"timestamp"`
	ContainerStatus *mesosContainerStatus `json:"container_status,omitempty"`
}

type mesosContainerStatus struct {
	NetworkInfos []mesosNetworkInfo `json:"network_infos,omitempty"`
}

type mesosNetworkInfo struct {
	IPAddresses []mesosIPAddress `json:"ip_addresses"`
}

type mesosIPAddress struct {
	Protocol  string `json:"protocol,omitempty"`
	IPAddress string `json:"ip_address"`
}

type mesosLabel struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// mesosLabels is the Labels protobuf in JSON, as inside discovery:
// {"labels": [{"key", "value"}]}.
type mesosLabels struct {
	Labels []mesosLabel `json:"labels"`
}

// mesosDiscovery is Mesos's DiscoveryInfo protobuf in JSON. Marathon
// sets name, visibility and ports, never the info-wide labels.
type mesosDiscovery struct {
	Visibility string     `json:"visibility"`
	Name       string     `json:"name"`
	Ports      mesosPorts `json:"ports"`
}

// mesosPorts is the Ports protobuf: {"ports": [...]}; a repeated field
// with no members is left out, as Mesos's JSON leaves it out.
type mesosPorts struct {
	Ports []mesosPort `json:"ports,omitempty"`
}

type mesosPort struct {
	Number   int          `json:"number"`
	Name     string       `json:"name,omitempty"`
	Protocol string       `json:"protocol"`
	Labels   *mesosLabels `json:"labels,omitempty"`
}

// mesosTaskOf renders t of app (the app's present definition: atoll
// keeps no older ones).
func mesosTaskOf(t events.Task, app events.App) mesosTask {
	mt := mesosTask{
		ID: t.ID, Name: taskName(t.AppID), FrameworkID: frameworkID, SlaveID: t.AgentID,
		State:     string(t.State),
		Resources: taskResources(t),
		Role:      "*",
		Statuses:  []mesosStatus{},
		Labels:    labelsOf(app.Labels),
		Discovery: discoveryOf(t, app),
	}
	// Mesos keeps every status update; atoll keeps the task's present one,
	// stamped when the task started (or was staged). Staging tasks have
	// had no update yet.
	if t.State != events.TaskStaging {
		at := t.StagedAt
		if t.StartedAt != nil {
			at = *t.StartedAt
		}
		status := mesosStatus{State: string(t.State), Timestamp: unixSeconds(at)}
		var ips []mesosIPAddress
		for _, a := range t.IPAddresses {
			ips = append(ips, mesosIPAddress{Protocol: a.Protocol, IPAddress: a.IPAddress})
		}
		if len(ips) > 0 {
			status.ContainerStatus = &mesosContainerStatus{NetworkInfos: []mesosNetworkInfo{{IPAddresses: ips}}}
		}
		mt.Statuses = append(mt.Statuses, status)
	}
	return mt
}

// discoveryOf is the DiscoveryInfo Marathon gives a task of app
// (TaskBuilder.computeDiscoveryInfo, PortDiscovery.generate): one port per
// port definition, or a bridged app's port mapping, and protocol ("udp,tcp"
// makes two), its number the task's host port, with the definition's name
// and labels.
func discoveryOf(t events.Task, app events.App) mesosDiscovery {
	d := mesosDiscovery{Visibility: "FRAMEWORK", Name: taskName(t.AppID)}
	for i, pd := range app.PortSpecs() { // a bridged app's: its port mappings
		if i >= len(t.Ports) {
			break // Marathon zips definitions with host ports
		}
		protocols := pd.Protocol
		if protocols == "" {
			protocols = "tcp"
		}
		for _, proto := range strings.Split(protocols, ",") {
			p := mesosPort{Number: t.Ports[i], Name: pd.Name, Protocol: proto}
			if ls := labelsOf(pd.Labels); ls != nil {
				p.Labels = &mesosLabels{Labels: ls}
			}
			d.Ports.Ports = append(d.Ports.Ports, p)
		}
	}
	return d
}

// labelsOf is a label map as Mesos labels, sorted by key; nil for none
// (Marathon sets no labels then).
func labelsOf(m map[string]string) []mesosLabel {
	var out []mesosLabel
	for _, k := range sortedKeys(m) {
		out = append(out, mesosLabel{Key: k, Value: m[k]})
	}
	return out
}

// taskName is the Mesos task name Marathon gives an app's tasks, and the
// discovery name (PathId.toHostname): the path reversed, joined by dots,
// "/group/app01" -> "app01.group". Mesos-DNS turns it into DNS names.
func taskName(appID string) string {
	segs := strings.Split(strings.Trim(appID, "/"), "/")
	for i, j := 0, len(segs)-1; i < j; i, j = i+1, j-1 {
		segs[i], segs[j] = segs[j], segs[i]
	}
	return strings.Join(segs, ".")
}

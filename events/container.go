package events

// Marathon's container and networks (container.raml, network.raml,
// portMapping in container.raml), as the master keeps them once their
// defaults are filled in. The master refuses the parts it cannot honour
// (422 naming the path); what is here, the agent runs.

// Container types: both run an image with the agent's OCI runtime (there
// is no Docker daemon; DOCKER is Marathon's Docker containerizer, MESOS its
// Mesos containerizer with a Docker image, and both behave the same here).
const (
	ContainerDocker = "DOCKER"
	ContainerMesos  = "MESOS"
)

// Network modes (Marathon's networks[].mode).
const (
	NetworkHost   = "host"
	NetworkBridge = "container/bridge"
)

// Container is Marathon's app container.
type Container struct {
	Type   string  `json:"type"`
	Docker *Docker `json:"docker,omitempty"`
	// Volumes are host paths (absolute) or sandbox-relative paths
	// mounted at ContainerPath.
	Volumes []Volume `json:"volumes,omitempty"`
	// PortMappings are the ports of a bridged container: each container
	// port is reached on the agent at HostPort (0 in the definition: the
	// master assigns one per task) and through the load balancer at
	// ServicePort.
	PortMappings []PortMapping `json:"portMappings,omitempty"`
}

// Docker is Marathon's container.docker.
type Docker struct {
	Image          string            `json:"image"`
	ForcePullImage bool              `json:"forcePullImage"`
	Parameters     []DockerParameter `json:"parameters,omitempty"`
}

// DockerParameter is one of Marathon's docker parameters (a docker run
// flag without its dashes, and its value).
type DockerParameter struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Volume is a bind mount into the container. Mode is RW or RO.
type Volume struct {
	ContainerPath string `json:"containerPath"`
	HostPath      string `json:"hostPath"`
	Mode          string `json:"mode"`
}

// PortMapping is Marathon's container port mapping.
type PortMapping struct {
	ContainerPort int               `json:"containerPort"`
	HostPort      int               `json:"hostPort"`
	ServicePort   int               `json:"servicePort"`
	Protocol      string            `json:"protocol"`
	Name          string            `json:"name,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
}

// Network is one of Marathon's app networks.
type Network struct {
	Mode   string            `json:"mode"`
	Name   string            `json:"name,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Bridged reports whether the app's tasks each get a network namespace
// of their own on the agent's bridge (networks [{mode: container/bridge}]),
// their ports given by the container's port mappings.
func (a *App) Bridged() bool {
	return len(a.Networks) > 0 && a.Networks[0].Mode == NetworkBridge
}

// PortSpecs are the app's ports as port definitions: its port mappings'
// service ports, protocols, names and labels when it is bridged, its
// portDefinitions otherwise. Every consumer of an app's ports (DNS, the
// load balancer, the scheduler) reads them here, so that both kinds of
// app look the same to it.
func (a *App) PortSpecs() []PortDefinition {
	if !a.Bridged() || a.Container == nil {
		return a.PortDefinitions
	}
	defs := make([]PortDefinition, len(a.Container.PortMappings))
	for i, pm := range a.Container.PortMappings {
		defs[i] = PortDefinition{Port: pm.ServicePort, Protocol: pm.Protocol, Name: pm.Name, Labels: pm.Labels}
	}
	return defs
}

// ContainerLaunch is how an agent runs a task from an image (nil in a
// LaunchRequest: the command runs on the host).
type ContainerLaunch struct {
	Image      string            `json:"image"`
	ForcePull  bool              `json:"forcePull,omitempty"`
	Parameters []DockerParameter `json:"parameters,omitempty"`
	Volumes    []Volume          `json:"volumes,omitempty"`
	// Bridged gives the task its own network namespace on the agent's
	// bridge; Ports then maps each of the task's host ports
	// (LaunchRequest.Task.Ports[i]) to Ports[i].ContainerPort.
	Bridged bool                `json:"bridged,omitempty"`
	Ports   []ContainerPortLink `json:"ports,omitempty"`
}

// ContainerPortLink is one host port → container port of a bridged task.
type ContainerPortLink struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"` // tcp, udp or "udp,tcp"
}

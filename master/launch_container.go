package master

import (
	"slices"

	"github.com/atollhq/atoll/events"
)

// containerLaunch is how the agent runs task t of app from its image:
// nil for an app without one (its command runs on the host). A bridged
// task's host ports (t.Ports, one per port mapping) lead to the mappings'
// container ports; a container port of 0 is the host port itself
// (containerPort's meaning in appContainer.raml), so a task that
// advertises its port advertises one others can reach.
func containerLaunch(app events.App, t events.Task) *events.ContainerLaunch {
	if !hasImage(app) {
		return nil
	}
	c := app.Container
	cl := &events.ContainerLaunch{
		Image:      c.Docker.Image,
		ForcePull:  c.Docker.ForcePullImage,
		Parameters: slices.Clone(c.Docker.Parameters),
		Volumes:    slices.Clone(c.Volumes),
		Bridged:    app.Bridged(),
	}
	if !cl.Bridged {
		return cl
	}
	for i, pm := range c.PortMappings {
		if i >= len(t.Ports) {
			break
		}
		port := pm.ContainerPort
		if port == 0 {
			port = t.Ports[i]
		}
		cl.Ports = append(cl.Ports, events.ContainerPortLink{HostPort: t.Ports[i], ContainerPort: port, Protocol: pm.Protocol})
	}
	return cl
}

// requestedPorts are the ports the app asks for, in PortSpecs order (0:
// any): a bridged app's container ports, a host-network app's service
// ports (Marathon's requestedPorts in EnvironmentHelper.portsEnv).
func requestedPorts(app events.App) []int {
	if app.Bridged() && app.Container != nil {
		out := make([]int, len(app.Container.PortMappings))
		for i, pm := range app.Container.PortMappings {
			out[i] = pm.ContainerPort
		}
		return out
	}
	return portNumbers(app.PortDefinitions)
}

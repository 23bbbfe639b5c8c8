package master

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/dockerparam"
)

// Marathon's container and networks (appContainer.raml, network.raml,
// volumes.raml; its AppValidation and AppNormalization for the rules and
// defaults): decoding, Marathon 1.5's migration of the legacy docker
// fields, merging into the app, validation, and the JSON the API shows.
//
// What atoll runs: an image (type DOCKER or MESOS, both through the
// agent's OCI runtime) on the host's network or on the agent's bridge
// (networks [{mode: container/bridge}] with portMappings), with host-path
// and sandbox-relative volumes and the docker parameters the agent maps
// onto the OCI spec. Everything else is a 422 naming it.

// Messages; Marathon's where it has one.
const (
	msgMappingsWithHost   = "portMappings are not allowed with host-networking"
	msgDefsWithBridge     = "portDefinitions are only allowed with host-networking"
	msgBothDockerNetwork  = "must not specify both container.docker.network and networks"
	msgBothPortMappings   = "cannot specify both portMappings and docker.portMappings"
	msgNotEmpty           = "must not be empty"
	msgUnknownContainer   = "is not a field of Marathon's container"
	msgContainerType      = "got %q, expected one of: DOCKER, MESOS"
	msgNeedsImage         = "is required: atoll runs a container from an image (container.docker.image)"
	msgBridgeNeedsImage   = "is required with container/bridge networking: a bridged task runs from an image"
	msgNamedNetworks      = "is not supported by atoll: named container networks (mode \"container\") need a CNI network per name; use \"container/bridge\" or \"host\""
	msgOneNetwork         = "got %d networks, expected 1: a task joins one network"
	msgNetworkMode        = "got %q, expected one of: host, container/bridge"
	msgNetworkName        = "is only for named container networks (mode \"container\")"
	msgDockerNetwork      = "got %q: atoll maps BRIDGE to networks [{\"mode\": \"container/bridge\"}] and HOST to [{\"mode\": \"host\"}]; NONE and USER are not supported"
	msgPrivileged         = "is not supported by atoll: a privileged container is the host's root; add the capabilities it needs (parameters cap-add)"
	msgPullConfig         = "is not supported by atoll: registry credentials are the agent's (its registry credentials file), not the app's"
	msgDockerParam        = "is not supported by atoll: the agent maps only these docker parameters onto its OCI runtime: %s"
	msgVolumeKind         = "is not supported by atoll: only host-path and sandbox volumes (hostPath, containerPath, mode) are"
	msgVolumeMode         = "got %q, expected one of: RW, RO"
	msgVolumeClimbs       = "must not contain '..': a relative path is in the task's sandbox"
	msgRequirePortsBridge = "is only for host networking: give a port mapping its hostPort to bind that port"
	msgHostPortsUnique    = "Host ports must be unique per protocol."
	msgNetworkNames       = "is not supported by atoll: it names container networks (mode \"container\")"
)

// containerPatch is an app JSON's container and networks as given; nil
// was absent (or null). A container given replaces the app's as a whole,
// as in Marathon.
type containerPatch struct {
	container *events.Container
	networks  *[]events.Network
	// mappingsGiven: the body had portMappings (or docker.portMappings),
	// perhaps empty; without, a bridged container gets Marathon's
	// default mapping.
	mappingsGiven bool
	// legacyNetwork is the deprecated docker.network (settleNetworks).
	legacyNetwork string
}

// settleNetworks migrates the legacy docker.network into networks, as
// Marathon 1.5 does (the container's reader found it).
func settleNetworks(r *reader, p *appPatch) {
	cp := &p.containers
	if cp.legacyNetwork == "" {
		return
	}
	mode := events.NetworkBridge
	if cp.legacyNetwork == "HOST" {
		mode = events.NetworkHost
	}
	if cp.networks != nil && len(*cp.networks) > 0 {
		r.invalid.add("/", msgBothDockerNetwork)
	} else {
		cp.networks = &[]events.Network{{Mode: mode}}
	}
}

func (r *reader) container(p string, raw json.RawMessage, cp *containerPatch, legacyNetwork *string) (events.Container, bool) {
	obj, ok := r.object(p, raw)
	if !ok {
		return events.Container{}, false
	}
	c := events.Container{Type: events.ContainerDocker}
	good := opt(r, obj, p, "type", &c.Type, r.str)
	if raw, ok := obj["portMappings"]; ok && !isNull(raw) {
		pms, ok := r.portMappings(p+"/portMappings", raw)
		good = good && ok
		c.PortMappings, cp.mappingsGiven = pms, true
	}
	if raw, ok := obj["docker"]; ok && !isNull(raw) {
		d, legacy, hasLegacy, ok := r.docker(p+"/docker", raw, legacyNetwork)
		good = good && ok
		c.Docker = &d
		switch {
		case !hasLegacy:
		case !cp.mappingsGiven:
			c.PortMappings, cp.mappingsGiven = legacy, true
		case !samePortMappings(c.PortMappings, legacy):
			// The API shows both (go-marathon reads docker.portMappings);
			// the same mappings twice are one app's JSON sent back.
			r.invalid.add(p, msgBothPortMappings)
		}
	}
	if raw, ok := obj["volumes"]; ok && !isNull(raw) {
		vols, ok := each(r, p+"/volumes", raw, r.volume)
		good = good && ok
		c.Volumes = vols
	}
	normalizeEmpty(&c)
	for _, k := range sortedKeys(obj) {
		switch k {
		case "type", "docker", "volumes", "portMappings":
		case "appc", "linuxInfo":
			if !asksNothing(obj[k]) {
				r.invalid.add(p+"/"+k, msgUnsupportedField+"atoll runs Docker images only, with its own isolation")
			}
		default:
			r.invalid.add(p+"/"+k, msgUnknownContainer)
		}
	}
	return c, good
}

// docker reads container.docker; legacy are its deprecated portMappings
// (hasLegacy when given), its deprecated network goes to *legacyNetwork.
func (r *reader) docker(p string, raw json.RawMessage, legacyNetwork *string) (d events.Docker, legacy []events.PortMapping, hasLegacy, good bool) {
	obj, ok := r.object(p, raw)
	if !ok {
		return d, nil, false, false
	}
	good = opt(r, obj, p, "image", &d.Image, r.str)
	good = opt(r, obj, p, "forcePullImage", &d.ForcePullImage, r.boolean) && good
	if raw, ok := obj["parameters"]; ok && !isNull(raw) {
		params, ok := each(r, p+"/parameters", raw, r.dockerParameter)
		good = good && ok
		d.Parameters = params
	}
	if raw, ok := obj["portMappings"]; ok && !isNull(raw) {
		pms, ok := r.portMappings(p+"/portMappings", raw)
		good = good && ok
		legacy, hasLegacy = pms, true
	}
	var network string
	if ok := opt(r, obj, p, "network", &network, r.str); !ok {
		good = false
	} else if network != "" {
		if network == "BRIDGE" || network == "HOST" {
			*legacyNetwork = network
		} else {
			r.invalid.add(p+"/network", fmt.Sprintf(msgDockerNetwork, network))
		}
	}
	var privileged bool
	if ok := opt(r, obj, p, "privileged", &privileged, r.boolean); !ok {
		good = false
	} else if privileged {
		r.invalid.add(p+"/privileged", msgPrivileged)
	}
	for _, k := range sortedKeys(obj) {
		switch k {
		case "image", "forcePullImage", "parameters", "portMappings", "network", "privileged":
		case "pullConfig", "credential":
			if !asksNothing(obj[k]) {
				r.invalid.add(p+"/"+k, msgPullConfig)
			}
		default:
			r.invalid.add(p+"/"+k, "is not a field of Marathon's docker container")
		}
	}
	return d, legacy, hasLegacy, good
}

func (r *reader) dockerParameter(p string, raw json.RawMessage) (events.DockerParameter, bool) {
	obj, ok := r.object(p, raw)
	if !ok {
		return events.DockerParameter{}, false
	}
	var dp events.DockerParameter
	good := opt(r, obj, p, "key", &dp.Key, r.str)
	good = opt(r, obj, p, "value", &dp.Value, r.str) && good
	for _, k := range sortedKeys(obj) {
		if k != "key" && k != "value" {
			r.invalid.add(p+"/"+k, "is not a field of a docker parameter")
		}
	}
	return dp, good
}

func (r *reader) portMappings(p string, raw json.RawMessage) ([]events.PortMapping, bool) {
	return each(r, p, raw, func(p string, raw json.RawMessage) (events.PortMapping, bool) {
		obj, ok := r.object(p, raw)
		if !ok {
			return events.PortMapping{}, false
		}
		// hostPort left out is 0 (assigned) in bridge mode, the only mode
		// with port mappings here (AppNormalization's HostPortDefault).
		pm := events.PortMapping{Protocol: "tcp"}
		good := opt(r, obj, p, "containerPort", &pm.ContainerPort, r.integer)
		good = opt(r, obj, p, "hostPort", &pm.HostPort, r.integer) && good
		good = opt(r, obj, p, "servicePort", &pm.ServicePort, r.integer) && good
		good = opt(r, obj, p, "protocol", &pm.Protocol, r.str) && good
		good = opt(r, obj, p, "name", &pm.Name, r.str) && good
		good = opt(r, obj, p, "labels", &pm.Labels, r.strMap) && good
		for _, k := range sortedKeys(obj) {
			switch k {
			case "containerPort", "hostPort", "servicePort", "protocol", "name", "labels":
			case "networkNames":
				if !asksNothing(obj[k]) {
					r.invalid.add(p+"/"+k, msgNetworkNames)
				}
			default:
				r.invalid.add(p+"/"+k, "is not a field of a port mapping")
			}
		}
		return pm, good
	})
}

func (r *reader) volume(p string, raw json.RawMessage) (events.Volume, bool) {
	obj, ok := r.object(p, raw)
	if !ok {
		return events.Volume{}, false
	}
	var v events.Volume
	good := opt(r, obj, p, "containerPath", &v.ContainerPath, r.str)
	good = opt(r, obj, p, "hostPath", &v.HostPath, r.str) && good
	good = opt(r, obj, p, "mode", &v.Mode, r.str) && good
	for _, k := range sortedKeys(obj) {
		switch k {
		case "containerPath", "hostPath", "mode":
		case "persistent", "external", "secret":
			r.invalid.add(p+"/"+k, msgVolumeKind)
		default:
			r.invalid.add(p+"/"+k, "is not a field of a container volume")
		}
	}
	return v, good
}

func (r *reader) network(p string, raw json.RawMessage) (events.Network, bool) {
	obj, ok := r.object(p, raw)
	if !ok {
		return events.Network{}, false
	}
	n := events.Network{Mode: "container"} // network.raml's default
	good := opt(r, obj, p, "mode", &n.Mode, r.str)
	good = opt(r, obj, p, "name", &n.Name, r.str) && good
	good = opt(r, obj, p, "labels", &n.Labels, r.strMap) && good
	for _, k := range sortedKeys(obj) {
		if k != "mode" && k != "name" && k != "labels" {
			r.invalid.add(p+"/"+k, "is not a field of a network")
		}
	}
	return n, good
}

// normalizeEmpty makes empty lists and maps nil, as a stored app has them
// (the JSON leaves them out): the app's own JSON sent back must compare
// equal to it, or a PUT that changes nothing would restart its tasks.
// Empty portMappings stay: they ask for no default mapping.
func normalizeEmpty(c *events.Container) {
	if len(c.Volumes) == 0 {
		c.Volumes = nil
	}
	if c.Docker != nil && len(c.Docker.Parameters) == 0 {
		c.Docker.Parameters = nil
	}
	for i := range c.PortMappings {
		if len(c.PortMappings[i].Labels) == 0 {
			c.PortMappings[i].Labels = nil
		}
	}
}

func samePortMappings(a, b []events.PortMapping) bool {
	return slices.EqualFunc(a, b, func(x, y events.PortMapping) bool {
		return x.ContainerPort == y.ContainerPort && x.HostPort == y.HostPort && x.ServicePort == y.ServicePort &&
			x.Protocol == y.Protocol && x.Name == y.Name && maps.Equal(x.Labels, y.Labels)
	})
}

// applyContainer merges the container and networks of p onto a (p's
// other fields already merged), with Marathon's normalization: a bridged
// app has no portDefinitions (its ports are its mappings) and, when its
// container names no mappings, one default mapping; an app leaving the
// bridge for the host network drops its mappings and, naming no ports,
// gets the default port definition. Only what p did not give is
// normalized: a body that asks for both kinds of port gets the 422.
func (p *appPatch) applyContainer(a *events.App) {
	cp := p.containers
	wasBridged := a.Bridged()
	if cp.container != nil {
		a.Container = cloneContainer(cp.container)
	}
	if cp.networks != nil {
		a.Networks = slices.Clone(*cp.networks)
	}
	portsGiven := p.given("portDefinitions") || p.given("ports")
	if a.Bridged() {
		if !portsGiven {
			a.PortDefinitions = nil
		}
		if !p.given("requirePorts") {
			a.RequirePorts = false
		}
		if c := a.Container; c != nil && !cp.mappingsGiven && len(c.PortMappings) == 0 && (cp.container != nil || !wasBridged) {
			c.PortMappings = []events.PortMapping{{Protocol: "tcp", Name: "default"}}
		}
		if ports, ok := value[[]int](p, "ports"); ok && a.Container != nil && !p.given("portDefinitions") {
			c := a.Container
			// Marathon 1.4's JSON of a BRIDGE app has "ports": its
			// mappings' service ports. Taken as those; one that
			// disagrees stays a port definition, and the 422.
			if servicePortsOf(c, ports) {
				a.PortDefinitions = nil
			}
		}
		if c := a.Container; c != nil && len(c.PortMappings) == 0 {
			c.PortMappings = nil
		}
		return
	}
	if c := a.Container; c != nil && !cp.mappingsGiven && len(c.PortMappings) > 0 {
		c.PortMappings = nil
	}
	if wasBridged && !portsGiven && len(a.PortDefinitions) == 0 {
		a.PortDefinitions = []events.PortDefinition{{Port: 0, Protocol: "tcp", Name: "default"}}
	}
}

// servicePortsOf takes a legacy "ports" list as the service ports of c's
// port mappings (more ports than mappings add mappings, as Marathon's
// maybeAddPortMappings does) and reports whether every port fitted: 0, or
// the mapping's servicePort, or a mapping without one.
func servicePortsOf(c *events.Container, ports []int) bool {
	for i, p := range ports {
		if i >= len(c.PortMappings) {
			c.PortMappings = append(c.PortMappings, events.PortMapping{Protocol: "tcp"})
		}
		switch sp := &c.PortMappings[i].ServicePort; {
		case p == 0 || *sp == p:
		case *sp == 0:
			*sp = p
		default:
			return false
		}
	}
	return true
}

// cloneContainer copies c's slices and maps (nil stays nil).
func cloneContainer(c *events.Container) *events.Container {
	if c == nil {
		return nil
	}
	out := *c
	if c.Docker != nil {
		d := *c.Docker
		d.Parameters = slices.Clone(d.Parameters)
		out.Docker = &d
	}
	out.Volumes = slices.Clone(c.Volumes)
	out.PortMappings = slices.Clone(c.PortMappings)
	for i := range out.PortMappings {
		out.PortMappings[i].Labels = maps.Clone(out.PortMappings[i].Labels)
	}
	return &out
}

// hasImage says whether the app runs from an image, which may then do
// without cmd and args (Marathon's containsCmdArgsOrContainer).
func hasImage(a events.App) bool {
	return a.Container != nil && a.Container.Docker != nil && a.Container.Docker.Image != ""
}

// validateContainer checks an app's container and networks.
func validateContainer(errs *fieldErrs, a events.App) {
	if len(a.Networks) > 1 {
		errs.add("/networks", fmt.Sprintf(msgOneNetwork, len(a.Networks)))
	}
	for i, n := range a.Networks {
		p := fmt.Sprintf("/networks(%d)", i)
		switch n.Mode {
		case events.NetworkHost, events.NetworkBridge:
			if n.Name != "" {
				errs.add(p+"/name", msgNetworkName)
			}
		case "container":
			errs.add(p+"/mode", msgNamedNetworks)
		default:
			errs.add(p+"/mode", fmt.Sprintf(msgNetworkMode, n.Mode))
		}
	}
	bridged := a.Bridged()
	if bridged && len(a.PortDefinitions) > 0 {
		errs.add("/", msgDefsWithBridge)
	}
	if bridged && a.RequirePorts {
		errs.add("/requirePorts", msgRequirePortsBridge)
	}
	c := a.Container
	if c == nil {
		if bridged {
			errs.add("/container", msgBridgeNeedsImage)
		}
		return
	}
	if c.Type != events.ContainerDocker && c.Type != events.ContainerMesos {
		errs.add("/container/type", fmt.Sprintf(msgContainerType, c.Type))
	}
	if c.Docker == nil {
		errs.add("/container/docker", msgNeedsImage)
	} else {
		if strings.TrimSpace(c.Docker.Image) == "" {
			errs.add("/container/docker/image", msgNotEmpty)
		}
		for i, dp := range c.Docker.Parameters {
			// The agent's own reading (events/dockerparam): a value it
			// would refuse at launch is refused here, before anything runs.
			switch err := dockerparam.Check(dp); {
			case errors.Is(err, dockerparam.UnknownKeyError):
				errs.add(fmt.Sprintf("/container/docker/parameters(%d)/key", i),
					fmt.Sprintf(msgDockerParam, strings.Join(dockerparam.Keys, ", ")))
			case err != nil:
				errs.add(fmt.Sprintf("/container/docker/parameters(%d)/value", i),
					fmt.Sprintf("%q for %s: %v", dp.Value, dp.Key, err))
			}
		}
	}
	for i, v := range c.Volumes {
		p := fmt.Sprintf("/container/volumes(%d)", i)
		if v.ContainerPath == "" {
			errs.add(p+"/containerPath", msgNotEmpty)
		} else if climbs(v.ContainerPath) {
			errs.add(p+"/containerPath", msgVolumeClimbs)
		}
		if v.HostPath == "" {
			errs.add(p+"/hostPath", msgNotEmpty)
		} else if climbs(v.HostPath) {
			errs.add(p+"/hostPath", msgVolumeClimbs)
		}
		if v.Mode != "RW" && v.Mode != "RO" {
			errs.add(p+"/mode", fmt.Sprintf(msgVolumeMode, v.Mode))
		}
	}
	if !bridged && len(c.PortMappings) > 0 {
		errs.add("/", msgMappingsWithHost)
	}
	validatePortMappings(errs, c.PortMappings)
}

// climbs says whether a relative path leaves the folder it is relative
// to; absolute paths are the host's (hostPath) or the container's.
func climbs(p string) bool {
	if path.IsAbs(p) {
		return false
	}
	return slices.Contains(strings.Split(p, "/"), "..")
}

func validatePortMappings(errs *fieldErrs, pms []events.PortMapping) {
	names := map[string]bool{}
	hostPorts := map[string]bool{}
	dupName, dupHost := false, false
	for i, pm := range pms {
		p := fmt.Sprintf("/container/portMappings(%d)", i)
		between(errs, p+"/containerPort", float64(pm.ContainerPort), 0, 65535, fmtInt)
		between(errs, p+"/hostPort", float64(pm.HostPort), 0, 65535, fmtInt)
		between(errs, p+"/servicePort", float64(pm.ServicePort), 0, 65535, fmtInt)
		if !validProtocol(pm.Protocol) {
			errs.add(p+"/protocol", msgProtocol)
		}
		if pm.Name != "" {
			dupName = dupName || names[pm.Name]
			names[pm.Name] = true
		}
		// One fixed host port may serve tcp and udp in two mappings
		// (DNS's 53), not the same protocol twice.
		if pm.HostPort != 0 {
			for proto := range strings.SplitSeq(pm.Protocol, ",") {
				k := fmt.Sprintf("%d/%s", pm.HostPort, proto)
				dupHost = dupHost || hostPorts[k]
				hostPorts[k] = true
			}
		}
	}
	if dupName {
		errs.add("/container/portMappings", msgPortNames)
	}
	if dupHost {
		errs.add("/container/portMappings", msgHostPortsUnique)
	}
}

// containerView is an app's container as Marathon 1.5+ shows it. A
// DOCKER container's docker.portMappings repeats its portMappings, as
// Marathon before 1.5 had them: go-marathon (TaskEndpoints, CheckHTTP)
// still reads them there, and decoding takes the two back when they agree.
type containerView struct {
	Type         string            `json:"type"`
	Docker       *dockerView       `json:"docker,omitempty"`
	Volumes      []events.Volume   `json:"volumes"`
	PortMappings []portMappingView `json:"portMappings,omitempty"`
}

type dockerView struct {
	Image          string                   `json:"image"`
	ForcePullImage bool                     `json:"forcePullImage"`
	Privileged     bool                     `json:"privileged"`
	Parameters     []events.DockerParameter `json:"parameters"`
	PortMappings   []portMappingView        `json:"portMappings,omitempty"`
}

type portMappingView struct {
	ContainerPort int               `json:"containerPort"`
	HostPort      int               `json:"hostPort"`
	ServicePort   int               `json:"servicePort"`
	Protocol      string            `json:"protocol"`
	Name          string            `json:"name,omitempty"`
	Labels        map[string]string `json:"labels"`
}

// containerViewOf is nil for an app without a container.
func containerViewOf(c *events.Container) *containerView {
	if c == nil {
		return nil
	}
	v := &containerView{Type: c.Type, Volumes: nonNil(c.Volumes)}
	for _, pm := range c.PortMappings {
		v.PortMappings = append(v.PortMappings, portMappingView{
			ContainerPort: pm.ContainerPort, HostPort: pm.HostPort, ServicePort: pm.ServicePort,
			Protocol: pm.Protocol, Name: pm.Name, Labels: nonNilMap(pm.Labels),
		})
	}
	if d := c.Docker; d != nil {
		v.Docker = &dockerView{Image: d.Image, ForcePullImage: d.ForcePullImage, Parameters: nonNil(d.Parameters)}
		if c.Type == events.ContainerDocker {
			v.Docker.PortMappings = v.PortMappings
		}
	}
	return v
}

// networksView is the app's networks; none is the host's, as Marathon
// shows it.
func networksView(nets []events.Network) []events.Network {
	if len(nets) == 0 {
		return []events.Network{{Mode: events.NetworkHost}}
	}
	return nets
}

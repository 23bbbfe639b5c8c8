package events

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// ContainerPolicy is what an agent lets a container ask for beyond a
// plain container (Nomad's docker driver has the same two knobs:
// volumes.enabled and allow_caps). Both default to nothing: a host path
// mounted read-write, or an added capability such as SYS_ADMIN, makes the
// container's root the host's root, and any API user may define an app.
// Agents advertise it when they register, so the scheduler places an app
// only where it may run; the agent checks it again at launch.
type ContainerPolicy struct {
	// HostVolumes are the absolute host paths (and everything under
	// them) a container's volumes may mount.
	HostVolumes []string `json:"hostVolumes,omitempty"`
	// Capabilities are the capabilities a container may add beyond
	// DockerDefaultCapabilities ("NET_ADMIN"; "ALL": any).
	Capabilities []string `json:"capabilities,omitempty"`
}

// DockerDefaultCapabilities are docker's default capabilities for a
// container: adding one of them asks for nothing more.
var DockerDefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// CapabilityName is a capability as the kernel names it: "net_admin",
// "NET_ADMIN" and "CAP_NET_ADMIN" are "CAP_NET_ADMIN"; "all" is "ALL".
func CapabilityName(v string) string {
	c := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(v)), "CAP_")
	if c == "ALL" {
		return c
	}
	return "CAP_" + c
}

// Refusal says why a container with these volumes and docker parameters
// may not run under the policy ("" if it may). Sandbox-relative volumes
// are always allowed. It looks at the paths as written: the agent also
// resolves links before it mounts (HostVolumeAllowed on the resolved
// path).
func (p ContainerPolicy) Refusal(volumes []Volume, params []DockerParameter) string {
	for _, v := range volumes {
		if filepath.IsAbs(v.HostPath) && !p.HostVolumeAllowed(v.HostPath) {
			return fmt.Sprintf("host volume %s is not allowed (agent flag --host-volumes)", v.HostPath)
		}
	}
	for _, prm := range params {
		if strings.TrimLeft(prm.Key, "-") != "cap-add" {
			continue
		}
		if c := CapabilityName(prm.Value); !p.capabilityAllowed(c) {
			return fmt.Sprintf("capability %s is not allowed (agent flag --container-caps)", strings.TrimPrefix(c, "CAP_"))
		}
	}
	return ""
}

// HostVolumeAllowed reports whether the absolute host path is one of the
// policy's host volumes or under one.
func (p ContainerPolicy) HostVolumeAllowed(path string) bool {
	path = filepath.Clean(path)
	for _, allowed := range p.HostVolumes {
		allowed = filepath.Clean(allowed)
		if path == allowed || allowed == "/" || strings.HasPrefix(path, allowed+"/") {
			return true
		}
	}
	return false
}

func (p ContainerPolicy) capabilityAllowed(c string) bool {
	if slices.Contains(DockerDefaultCapabilities, c) {
		return true
	}
	for _, a := range p.Capabilities {
		if a := CapabilityName(a); a == "ALL" || a == c {
			return true
		}
	}
	return false
}

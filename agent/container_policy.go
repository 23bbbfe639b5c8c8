package agent

import (
	"fmt"
	"path/filepath"

	"github.com/atollhq/atoll/events"
)

// allowed checks a container launch against the agent's policy and
// returns its volumes with every host path resolved. The master places
// apps only on agents whose policy allows them; this check is the one
// that counts, on the host whose files are at stake: a link under an
// allowed folder (/srv/data/x -> /) must not lead a mount out of it, so
// the resolved path is checked too, and mounted.
func (c *containers) allowed(l *events.ContainerLaunch) ([]events.Volume, error) {
	if why := c.policy.Refusal(l.Volumes, l.Parameters); why != "" {
		return nil, fmt.Errorf("container refused: %s", why)
	}
	out := make([]events.Volume, len(l.Volumes))
	var real events.ContainerPolicy // the policy's links resolved, once a host path needs it
	for i, v := range l.Volumes {
		out[i] = v
		if !filepath.IsAbs(v.HostPath) {
			continue
		}
		path, err := filepath.EvalSymlinks(v.HostPath)
		if err != nil {
			return nil, fmt.Errorf("host volume %s: %w", v.HostPath, err)
		}
		if real.HostVolumes == nil {
			real = resolved(c.policy)
		}
		if !real.HostVolumeAllowed(path) {
			return nil, fmt.Errorf("container refused: host volume %s leads to %s, which is not allowed (agent flag --host-volumes)", v.HostPath, path)
		}
		out[i].HostPath = path
	}
	return out, nil
}

// resolved is the policy with its host volumes' links resolved, as the
// paths checked against them are (an allowed /data may be a link to
// /mnt/disk1); one that does not resolve allows only itself as written.
func resolved(p events.ContainerPolicy) events.ContainerPolicy {
	out := p
	out.HostVolumes = make([]string, len(p.HostVolumes))
	for i, h := range p.HostVolumes {
		out.HostVolumes[i] = h
		if real, err := filepath.EvalSymlinks(h); err == nil {
			out.HostVolumes[i] = real
		}
	}
	return out
}

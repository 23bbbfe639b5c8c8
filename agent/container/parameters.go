package container

import (
	"cmp"
	"maps"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/dockerparam"
)

// Parameter is one of Marathon's container.docker.parameters: a docker
// run flag without its dashes ({"key": "cap-add", "value": "NET_ADMIN"}).
type Parameter struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// SupportedParameters are the docker run flags that map onto the OCI
// spec (events/dockerparam reads them, for the master's checks as for
// the agent).
var SupportedParameters = dockerparam.Keys

// Tmpfs is a tmpfs mount (docker's --tmpfs).
type Tmpfs = dockerparam.Tmpfs

// ApplyParameters lays docker parameters onto t. An unsupported key, or a
// value docker itself would refuse, is an error naming the parameter.
func ApplyParameters(t Task, params []Parameter) (Task, error) {
	ps := make([]events.DockerParameter, len(params))
	for i, p := range params {
		ps[i] = events.DockerParameter{Key: p.Key, Value: p.Value}
	}
	s, err := dockerparam.Parse(ps)
	if err != nil {
		return t, err
	}
	t.CapAdd = append(t.CapAdd, s.CapAdd...)
	t.CapDrop = append(t.CapDrop, s.CapDrop...)
	if len(s.Env) > 0 {
		t.Env = maps.Clone(t.Env)
		if t.Env == nil {
			t.Env = map[string]string{}
		}
		maps.Copy(t.Env, s.Env)
	}
	t.Hostname = cmp.Or(s.Hostname, t.Hostname)
	t.User = cmp.Or(s.User, t.User)
	t.WorkingDir = cmp.Or(s.WorkingDir, t.WorkingDir)
	t.Labels, t.Sysctls = s.Labels, s.Sysctls
	if s.OOMScoreAdj != nil {
		t.OOMScoreAdj = s.OOMScoreAdj
	}
	t.PidsMax = cmp.Or(s.PidsMax, t.PidsMax)
	t.ReadOnlyRootfs = t.ReadOnlyRootfs || s.ReadOnlyRootfs
	t.ShmSize = cmp.Or(s.ShmSize, t.ShmSize)
	t.Tmpfs = append(t.Tmpfs, s.Tmpfs...)
	for _, r := range s.Rlimits {
		t.Rlimits = append(t.Rlimits, specs.POSIXRlimit{Type: r.Type, Soft: r.Soft, Hard: r.Hard})
	}
	return t, nil
}

// capabilitiesFor is docker's default set with t's additions and drops.
func capabilitiesFor(t Task) []string {
	caps := slices.Clone(defaultCapabilities)
	if slices.Contains(t.CapDrop, "ALL") {
		caps = nil
	}
	for _, c := range t.CapAdd {
		if c == "ALL" {
			caps = caps[:0]
			for _, k := range dockerparam.KnownCapabilities {
				caps = append(caps, "CAP_"+k)
			}
			continue
		}
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return slices.DeleteFunc(caps, func(c string) bool { return slices.Contains(t.CapDrop, c) })
}

package scheduler

import (
	"testing"

	"github.com/atollhq/atoll/events"
)

// TestPlaceHonoursAgentContainerPolicy: an app mounting a host path, or
// adding a capability, goes only to agents that allow it, and when none
// does the reason names what was refused rather than leaving the
// deployment waiting in silence.
func TestPlaceHonoursAgentContainerPolicy(t *testing.T) {
	allowing := agent("b")
	allowing.Containers = events.ContainerPolicy{HostVolumes: []string{"/srv/data"}, Capabilities: []string{"NET_ADMIN"}}
	mounting := func(hostPath string, params ...events.DockerParameter) events.App {
		a := app("/db")
		a.Container = &events.Container{Type: "DOCKER", Docker: &events.Docker{Image: "db:1", Parameters: params},
			Volumes: []events.Volume{{ContainerPath: "/data", HostPath: hostPath, Mode: "RW"}}}
		return a
	}
	runPlace(t, []placeCase{
		{
			name:   "a host volume goes where it is allowed",
			agents: agents(agent("a"), allowing, agent("c")),
			app:    mounting("/srv/data/db"), n: 2,
			want: []string{"b", "b"},
		},
		{
			name:   "a sandbox volume goes anywhere",
			agents: agents(agent("a"), agent("c")),
			app:    mounting("data"), n: 2,
			want: []string{"a", "c"},
		},
		{
			name:   "a path beside an allowed one is not under it",
			agents: agents(agent("a"), allowing),
			app:    mounting("/srv/database"), n: 1,
			reason: "host volume /srv/database is not allowed (agent flag --host-volumes) (2 of 2 agents)",
		},
		{
			name:   "root is refused everywhere by default",
			agents: agents(agent("a"), agent("c")),
			app:    mounting("/"), n: 1,
			reason: "host volume / is not allowed (agent flag --host-volumes) (2 of 2 agents)",
		},
		{
			name:   "an added capability beyond docker's set",
			agents: agents(agent("a"), allowing),
			app:    mounting("data", events.DockerParameter{Key: "cap-add", Value: "SYS_ADMIN"}), n: 1,
			reason: "capability SYS_ADMIN is not allowed (agent flag --container-caps) (2 of 2 agents)",
		},
		{
			name:   "an allowed capability, named either way",
			agents: agents(agent("a"), allowing),
			app:    mounting("data", events.DockerParameter{Key: "cap-add", Value: "cap_net_admin"}), n: 1,
			want: []string{"b"},
		},
		{
			name:   "a capability docker grants anyway asks for nothing",
			agents: agents(agent("a")),
			app:    mounting("data", events.DockerParameter{Key: "cap-add", Value: "CHOWN"}), n: 1,
			want: []string{"a"},
		},
		{
			name:   "policy and resources together",
			agents: agents(agent("a"), func() events.Agent { b := allowing; b.Resources.Cpus = 0; return b }()),
			app:    mounting("/srv/data"), n: 1,
			reason: "no agent fits: not enough cpus (1 of 2 agents); host volume /srv/data is not allowed (agent flag --host-volumes) (1 of 2 agents)",
		},
	})
}

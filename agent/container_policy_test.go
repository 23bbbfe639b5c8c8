package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/atollhq/atoll/events"
)

// A container may mount only the host paths its agent allows
// (--host-volumes) and add only the capabilities it allows
// (--container-caps): by default neither, since the container's root
// with the host's / mounted, or with SYS_ADMIN, is the host's root. A
// link under an allowed folder does not lead a mount out of it. The agent
// tells the master its policy when it registers.
func TestContainerHostVolumesAndCapabilitiesOnlyWhereAllowed(t *testing.T) {
	e := newContainerEnv(t)
	allowed := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(allowed, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(allowed, "greeting"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(allowed, "root")); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.Containers.Policy = events.ContainerPolicy{HostVolumes: []string{allowed}}
	leaveNoContainer(t, cfg, "reads.1")
	a := e.start(e.newAgent(cfg))
	id := e.registered(a)
	if got := e.master.lastRegister().Containers; !reflect.DeepEqual(got, cfg.Containers.Policy) {
		t.Errorf("registered with container policy %+v, want %+v", got, cfg.Containers.Policy)
	}

	launch := func(task, cmd, hostPath string, params ...events.DockerParameter) {
		t.Helper()
		req := shellTask(task, cmd)
		req.Container = &events.ContainerLaunch{Image: e.image, Parameters: params,
			Volumes: []events.Volume{{ContainerPath: "/data", HostPath: hostPath, Mode: "RO"}}}
		if ack := e.launch(id, req); ack.Error != "" {
			t.Fatalf("%s: launch: %s", task, ack.Error)
		}
	}
	refused := func(task, want string) {
		t.Helper()
		upd := e.master.waitStatus(t, task, events.TaskFailed)
		if !strings.Contains(upd.Message, want) {
			t.Errorf("%s: message %q, want %q in it", task, upd.Message, want)
		}
	}

	launch("root.1", "true", "/")
	refused("root.1", "host volume / is not allowed (agent flag --host-volumes)")
	launch("beside.1", "true", allowed+"-not")
	refused("beside.1", "is not allowed")
	launch("link.1", "true", filepath.Join(allowed, "root"))
	refused("link.1", "leads to /, which is not allowed")
	launch("caps.1", "true", "sandboxdir", events.DockerParameter{Key: "cap-add", Value: "SYS_ADMIN"})
	refused("caps.1", "capability SYS_ADMIN is not allowed (agent flag --container-caps)")

	// The allowed folder is mounted, read-only as asked.
	launch("reads.1", `test "$(cat /data/greeting)" = hi && ! touch /data/new`, allowed)
	e.master.waitStatus(t, "reads.1", events.TaskFinished)
}

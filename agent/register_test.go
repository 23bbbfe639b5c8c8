package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
)

func TestRegisterPersistsID(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	if id != "agent-1" {
		t.Fatalf("id = %q, want agent-1", id)
	}
	reg := env.master.lastRegister()
	if reg.AgentID != "" || reg.Hostname != "node1" || reg.IP != "127.0.0.2" ||
		reg.Resources.Cpus != 2 || reg.Attributes["region"] != "oslo" {
		t.Errorf("first registration = %+v", reg)
	}
	if len(reg.Resources.Ports) != 1 || reg.Resources.Ports[0] != (events.PortRange{Begin: 31000, End: 32000}) {
		t.Errorf("ports = %v, want default 31000-32000", reg.Resources.Ports)
	}
	data, err := os.ReadFile(filepath.Join(cfg.WorkDir, "state", "agent-id"))
	if err != nil || strings.TrimSpace(string(data)) != "agent-1" {
		t.Fatalf("agent-id file = %q, %v", data, err)
	}
	a.stop(t)

	// A new agent on the same work dir comes back under the same id.
	cfg.NC = env.connect()
	b := env.newAgent(cfg)
	if b.ID() != "agent-1" {
		t.Fatalf("restarted agent ID() = %q before Run, want agent-1", b.ID())
	}
	n := env.master.registerCount()
	rb := env.start(b)
	waitFor(t, 10*time.Second, "second registration", func() bool { return env.master.registerCount() > n })
	if got := env.master.lastRegister().AgentID; got != "agent-1" {
		t.Errorf("re-registration AgentID = %q, want agent-1", got)
	}
	if rb.ID() != "agent-1" {
		t.Errorf("ID() = %q", rb.ID())
	}
}

func TestHeartbeatReregisterMovesSubscriptions(t *testing.T) {
	env := newTestEnv(t)
	a := env.start(env.newAgent(env.config()))
	old := env.registered(a)

	// Heartbeats arrive with the agent id.
	waitFor(t, 5*time.Second, "heartbeat", func() bool {
		env.master.mu.Lock()
		defer env.master.mu.Unlock()
		n := len(env.master.heartbeats)
		return n > 0 && env.master.heartbeats[n-1].AgentID == old
	})

	// The master forgets the agent and hands out a new id.
	env.master.mu.Lock()
	env.master.newIDs = true
	env.master.reregister = 1
	env.master.mu.Unlock()
	waitFor(t, 10*time.Second, "new id", func() bool { return a.ID() != old && env.master.knows(a.ID()) })
	id := a.ID()

	if ack := env.launch(id, shellTask("t1", "exit 0")); ack.Error != "" {
		t.Fatalf("launch on new id: %s", ack.Error)
	}
	env.master.waitStatus(t, "t1", events.TaskFinished)
}

func TestRegisterRetriesUntilMaster(t *testing.T) {
	env := newTestEnv(t)
	// No master serves this prefix yet; a silent listener counts attempts.
	cfg := env.config()
	cfg.Subjects = events.Subjects{Prefix: "late"}
	cfg.NC = env.srv.ConnectIn(t, cfg.Subjects, natsauth.RoleAgent, testNode)
	leader := env.srv.ConnectIn(t, cfg.Subjects, natsauth.RoleMaster, "late-master")
	var attempts atomic.Int32
	silent, err := leader.Subscribe(cfg.Subjects.Register(testNode), func(*nats.Msg) { attempts.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	b := env.newAgent(cfg)
	b.registerTimeout = 50 * time.Millisecond
	a := env.start(b)
	waitFor(t, 10*time.Second, "three unanswered registrations", func() bool { return attempts.Load() >= 3 })
	if err := silent.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if a.ID() != "" {
		t.Fatalf("ID() = %q without a master", a.ID())
	}
	m := startFakeMaster(t, leader, cfg.Subjects)
	waitFor(t, 10*time.Second, "registration", func() bool { return a.ID() != "" && m.knows(a.ID()) })
}

func TestWorkDirLocked(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	env.registered(a)
	cfg.NC = env.connect()
	b := env.newAgent(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.Run(ctx); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second agent on the same work dir: err = %v", err)
	}
}

func TestNewDefaults(t *testing.T) {
	env := newTestEnv(t)
	if _, err := New(Config{WorkDir: t.TempDir()}); err == nil {
		t.Error("New without NATS connection: no error")
	}
	if _, err := New(Config{NC: env.nc}); err == nil {
		t.Error("New without work dir: no error")
	}
	a, err := New(Config{NC: env.nc, WorkDir: t.TempDir(), Resources: events.Resources{Cpus: 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeParentCgroup(a) })
	r := a.cfg.Resources
	if r.Cpus != 0.5 || r.Mem <= 0 || r.Disk <= 0 || len(r.Ports) != 1 {
		t.Errorf("resources = %+v", r)
	}
	if a.cfg.HeartbeatInterval != time.Second || a.cfg.Hostname == "" || a.cfg.AdvertiseIP != "127.0.0.1" {
		t.Errorf("defaults: interval %v, hostname %q, ip %q", a.cfg.HeartbeatInterval, a.cfg.Hostname, a.cfg.AdvertiseIP)
	}
	bad := events.Resources{Ports: []events.PortRange{{Begin: 10, End: 5}}}
	if _, err := New(Config{NC: env.nc, WorkDir: t.TempDir(), Resources: bad}); err == nil {
		t.Error("New with a bad port range: no error")
	}
}

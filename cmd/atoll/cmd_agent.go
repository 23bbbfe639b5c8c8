package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/atollhq/atoll/agent"
	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
)

func runAgent(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll agent", flag.ContinueOnError)
	var nf natsFlags
	nf.register(fs)
	hostname := fs.String("hostname", "", "hostname to register: must be the name of the --nats-creds credential (default: that name)")
	advertise := fs.String("advertise-ip", "", "IP that DNS and HAProxy point at for this agent's tasks (required)")
	attrs := fs.String("attributes", "", `attributes in Mesos syntax, e.g. "region:oslo;zone:a"`)
	cpus := fs.Float64("cpus", 0, "cpus to offer (default: detected)")
	mem := fs.Float64("mem", 0, "memory in MB to offer (default: detected)")
	disk := fs.Float64("disk", 0, "disk in MB to offer (default: detected)")
	ports := fs.String("ports", "31000-32000", "host port ranges, e.g. 31000-32000,33000-33100")
	workDir := fs.String("work-dir", "./.atoll/agent", "folder for the agent id, task checkpoints and sandboxes")
	defaultUser := fs.String("default-user", "", `user a task runs as when its app has no "user" (default: nobody when the agent runs as root, else the agent's own user)`)
	allowRoot := fs.Bool("allow-root-tasks", false, `let tasks run as root (an app with "user":"root", or --default-user root)`)
	heartbeat := fs.Duration("heartbeat", time.Second, "heartbeat interval")
	isolation := fs.String("isolation", string(agent.IsolationCgroups), "cgroups: every task in a cgroup of its own, held to its app's cpus and mem (needs root); none: tasks run unlimited")
	cgroupParent := fs.String("cgroup-parent", "", `the agent's cgroup, its tasks' inside, limited to the advertised cpus and mem: relative to the agent's own cgroup, or absolute (default "atoll-<hostname>-<hash of --work-dir>")`)
	pidsLimit := fs.Int64("task-pids-limit", agent.DefaultTaskPidsLimit, "processes and threads a task may have (negative: no limit)")
	usageInterval := fs.Duration("usage-interval", 10*time.Second, "how often a heartbeat carries the tasks' usage (from their cgroups)")
	bridgeSubnet := fs.String("bridge-subnet", agent.DefaultBridgeSubnet, `subnet of the bridge "container/bridge" tasks get their address on (the default is in 198.18.0.0/15, routed nowhere, so it cannot collide with the host's networks)`)
	bridgeName := fs.String("bridge-name", "atoll0", "the host bridge of container/bridge tasks (one per agent on a machine)")
	var cf containerFlags
	cf.register(fs)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	log := newLogger(stderr, *logLevel).With("component", "agent")
	o := agentOptions{
		nats: nf, hostname: *hostname, advertiseIP: *advertise, attributes: *attrs,
		cpus: *cpus, mem: *mem, disk: *disk, ports: *ports, workDir: *workDir, heartbeat: *heartbeat,
		defaultUser: *defaultUser, allowRootTasks: *allowRoot,
		isolation: *isolation, cgroupParent: *cgroupParent, taskPidsLimit: *pidsLimit, usageInterval: *usageInterval,
		containers: cf, bridgeSubnet: *bridgeSubnet, bridgeName: *bridgeName,
	}
	if err := serveAgent(ctx, o, false, log); err != nil {
		fmt.Fprintln(stderr, "atoll agent:", err)
		return 1
	}
	return 0
}

type agentOptions struct {
	nats                       natsFlags
	hostname, advertiseIP      string
	attributes, ports, workDir string
	cpus, mem, disk            float64
	heartbeat                  time.Duration
	defaultUser                string
	allowRootTasks             bool
	isolation, cgroupParent    string
	taskPidsLimit              int64
	usageInterval              time.Duration
	containers                 containerFlags
	bridgeSubnet, bridgeName   string
}

// agentConfig turns options into an agent config (without the connection).
func agentConfig(o agentOptions, killOnStop bool, log *slog.Logger) (agent.Config, error) {
	if o.advertiseIP == "" {
		return agent.Config{}, fmt.Errorf("--advertise-ip is required")
	}
	if o.hostname == "" {
		o.hostname, _ = os.Hostname()
	}
	attrs, err := agent.ParseAttributes(o.attributes)
	if err != nil {
		return agent.Config{}, fmt.Errorf("--attributes: %w", err)
	}
	ranges, err := agent.ParsePortRanges(o.ports)
	if err != nil {
		return agent.Config{}, fmt.Errorf("--ports: %w", err)
	}
	isolation, err := agent.ParseIsolation(o.isolation)
	if err != nil {
		return agent.Config{}, fmt.Errorf("--isolation: %w", err)
	}
	cfg := agent.Config{
		Subjects:           o.nats.subjects(),
		Hostname:           o.hostname,
		AdvertiseIP:        o.advertiseIP,
		Resources:          events.Resources{Cpus: o.cpus, Mem: o.mem, Disk: o.disk, Ports: ranges},
		Attributes:         attrs,
		WorkDir:            o.workDir,
		DefaultUser:        o.defaultUser,
		AllowRootTasks:     o.allowRootTasks,
		HeartbeatInterval:  o.heartbeat,
		BinDir:             binDir(),
		KillTasksOnStop:    killOnStop,
		Isolation:          isolation,
		CgroupParent:       o.cgroupParent,
		TaskPidsLimit:      o.taskPidsLimit,
		StatisticsInterval: o.usageInterval,
		Log:                log,
	}
	if err := o.containers.apply(&cfg); err != nil {
		return agent.Config{}, err
	}
	cfg.Containers.BridgeSubnet, cfg.Containers.BridgeName = o.bridgeSubnet, o.bridgeName
	return cfg, nil
}

// serveAgent runs one agent until ctx ends. Its hostname is its
// credential's name (the master refuses any other): --hostname may only
// repeat it.
func serveAgent(ctx context.Context, o agentOptions, killOnStop bool, log *slog.Logger) error {
	id, err := o.nats.readIdentity(natsauth.RoleAgent)
	if err != nil {
		return err
	}
	switch {
	case o.hostname == "":
		o.hostname = id.Name
	case events.NodeToken(o.hostname) != events.NodeToken(id.Name):
		return fmt.Errorf("--hostname %q is not the name of the agent's credential (%q): an agent registers only as the node its credential names", o.hostname, id.Name)
	}
	cfg, err := agentConfig(o, killOnStop, log)
	if err != nil {
		return err
	}
	ctx, nc, err := o.nats.dial(ctx, "atoll-agent-"+cfg.Hostname, natsauth.RoleAgent, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	cfg.NC = nc
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	log.Info("agent starting", "hostname", cfg.Hostname, "advertise-ip", cfg.AdvertiseIP, "work-dir", cfg.WorkDir,
		"default-user", a.DefaultUser(), "isolation", cfg.Isolation)
	return natsCause(ctx, a.Run(ctx))
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/atollhq/atoll/agent/cninet"
	"github.com/atollhq/atoll/agent/container"
	"github.com/atollhq/atoll/agent/imagestore"
	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/cgroup"
)

// Tasks of apps with a container run from their image with an OCI runtime
// (agent/container): the image pulled into the agent's image store, a
// root filesystem per task, the task's sandbox mounted at
// /mnt/mesos/sandbox, a network namespace on the agent's bridge for
// "container/bridge" apps. The runtime's process (runc run, under a shell
// that records its exit status) is the task's pid, a child of the agent
// in a process group of its own: it lives as long as the container, so a
// restarted agent adopts a container as it adopts a host process, and
// reads how it ended from its bundle.
//
// Who may use what: the image store, the runtime's state, the bundles
// and root filesystems and the CNI state are under WORK_DIR/state (the
// agent's, 0700). A container task's sandbox is the agent's (0700):
// root in the container may write to it, another user of the image may
// not.

// ContainerConfig configures how an agent runs tasks from images.
type ContainerConfig struct {
	// Runtime is the OCI runtime: a name looked up on PATH (and in
	// /usr/sbin) or a path; "" is runc. An agent without it still runs
	// host tasks; its container tasks fail, saying so.
	Runtime string
	// InsecureRegistries ("host:port") may be pulled from over plain
	// HTTP or unverified HTTPS (loopback registries always may).
	InsecureRegistries []string
	// RegistryCredentials is a Docker config.json with registry logins:
	// the agent's own file, mode 0600 (checked at start).
	RegistryCredentials string
	// BridgeSubnet is where "container/bridge" tasks get their address;
	// "" is DefaultBridgeSubnet.
	BridgeSubnet string
	// BridgeName is the host bridge's name; "" is atoll0. Agents sharing
	// a machine need one each (and subnets apart).
	BridgeName string
	// BridgeNetNS is a network namespace file the bridge lives in; ""
	// is the agent's own namespace (tests keep the machine's untouched).
	BridgeNetNS string
	// CNIPluginDirs hold the CNI plugins; nil is /usr/lib/cni (Debian's
	// containernetworking-plugins).
	CNIPluginDirs []string
	// PullTimeout bounds an image pull; 0 is 10 minutes.
	PullTimeout time.Duration
	// Policy is what containers may ask for beyond a plain container
	// (host volumes, added capabilities); the zero value allows neither.
	Policy events.ContainerPolicy
}

// DefaultBridgeSubnet is the bridge's subnet unless told otherwise: in
// 198.18.0.0/15, set aside for benchmarking (RFC 2544) and routed nowhere,
// so it cannot collide with the networks of the agent's host.
const DefaultBridgeSubnet = "198.18.0.0/16"

// containers is the agent's way to run tasks from images.
type containers struct {
	driver *container.Driver
	// runtimeErr says why container tasks cannot run (no runc);
	// bridgeErr why bridged ones cannot (no CNI plugins).
	runtimeErr, bridgeErr error
	policy                events.ContainerPolicy
}

// openContainers opens the image store, finds the runtime and prepares
// the bridge. A missing runtime or missing plugins are not the agent's
// failure: tasks that need them fail with the reason.
func openContainers(cfg Config, log interface{ Warn(string, ...any) }) (*containers, error) {
	state := filepath.Join(cfg.WorkDir, stateDir)
	images, err := imagestore.Open(imagestore.Options{
		Root:               filepath.Join(state, "images"),
		CredentialsFile:    cfg.Containers.RegistryCredentials,
		InsecureRegistries: cfg.Containers.InsecureRegistries,
		PullTimeout:        cfg.Containers.PullTimeout,
	})
	if err != nil {
		return nil, err
	}
	c := &containers{policy: cfg.Containers.Policy, driver: &container.Driver{Images: images, Dir: filepath.Join(state, "containers")}}
	name := cfg.Containers.Runtime
	if name == "" {
		name = "runc"
	}
	rt, err := container.NewRuntime(name, filepath.Join(state, "runc"))
	if err != nil {
		c.runtimeErr = fmt.Errorf("container runtime %s not found (apt-get install runc, or --container-runtime)", name)
		log.Warn("tasks with a container will fail", "err", err)
	} else {
		c.driver.Runtime = rt
	}
	subnet := cfg.Containers.BridgeSubnet
	if subnet == "" {
		subnet = DefaultBridgeSubnet
	}
	bridge, err := cninet.New(cninet.Options{
		Subnet: subnet, Bridge: cfg.Containers.BridgeName, PluginDirs: cfg.Containers.CNIPluginDirs,
		StateDir: filepath.Join(state, "cni"), HostNetNS: cfg.Containers.BridgeNetNS,
	})
	if err != nil {
		if _, _, perr := net.ParseCIDR(subnet); perr != nil {
			return nil, fmt.Errorf("bridge subnet %q: %w", subnet, perr)
		}
		c.bridgeErr = err
		log.Warn("tasks with container/bridge networking will fail", "err", err)
	} else {
		c.driver.Bridge = bridge
	}
	return c, nil
}

// startContainer runs a task from its image: sandbox, fetch, pull
// (TASK_STARTING once the image is there), root filesystem, network,
// runtime; then the checkpoint.
func (a *Agent) startContainer(ctx context.Context, req events.LaunchRequest) (started, error) {
	c, id := req.Container, req.Task.ID
	volumes, err := a.ctrs.allowed(c)
	if err != nil {
		return started{}, err
	}
	if a.ctrs.runtimeErr != nil {
		return started{}, a.ctrs.runtimeErr
	}
	if c.Bridged && a.ctrs.bridgeErr != nil {
		return started{}, fmt.Errorf("container/bridge networking: %w", a.ctrs.bridgeErr)
	}
	d := a.ctrs.driver
	dir := a.taskDir(id)
	if err := makeSandbox(dir, nil); err != nil {
		return started{}, err
	}
	if err := a.fetchAll(req.Fetch, dir, nil); err != nil {
		return started{}, err
	}
	if _, err := d.Images.Pull(ctx, c.Image, imagestore.PullOptions{Force: c.ForcePull}); err != nil {
		return started{}, err
	}
	a.mu.Lock()
	if t := a.tasks[id]; t != nil && t.state == events.TaskStaging {
		t.state = events.TaskStarting // what heartbeats say of it now
	}
	a.sendUpdate(id, events.TaskStarting, "", nil)
	a.mu.Unlock()

	task := container.Task{ID: id, Cmd: req.Cmd, Args: req.Args, Env: req.Env, User: req.User, Sandbox: dir}
	for _, v := range volumes {
		if !filepath.IsAbs(v.HostPath) {
			// A sandbox-relative host path is a folder of the sandbox
			// (Mesos makes it), made with no link on the way.
			if err := mkdirsNoLinks(dir, filepath.Join(dir, v.HostPath)); err != nil {
				return started{}, fmt.Errorf("volume %s: %w", v.HostPath, err)
			}
		}
		task.Volumes = append(task.Volumes, container.Volume{ContainerPath: v.ContainerPath, HostPath: v.HostPath, ReadOnly: v.Mode == "RO"})
	}
	if req.Limits != nil {
		task.CPUs, task.MemMB = req.Limits.Cpus, req.Limits.Mem
	}
	if a.cfg.TaskPidsLimit > 0 {
		task.PidsMax = a.cfg.TaskPidsLimit
	}
	var group *cgroup.Group
	if a.cgroups != nil {
		// runc makes the container's cgroup where a host task's would be.
		task.CgroupsPath = a.cgroups.RuncPath(id)
		group = a.cgroups.Child(id)
	}
	launch := container.Launch{Task: task, Image: c.Image, Bridged: c.Bridged,
		Stdout: filepath.Join(dir, "stdout"), Stderr: filepath.Join(dir, "stderr")}
	for _, p := range c.Parameters {
		launch.Parameters = append(launch.Parameters, container.Parameter{Key: p.Key, Value: p.Value})
	}
	for _, p := range c.Ports {
		for _, proto := range strings.Split(p.Protocol, ",") {
			launch.Ports = append(launch.Ports, cninet.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: strings.TrimSpace(proto)})
		}
	}
	at := time.Now().UTC()
	run, err := d.Start(ctx, launch)
	if err != nil {
		return started{}, err
	}
	st := started{pid: run.Pid, at: at, runAs: a.users.self, cgroup: group}
	if run.IP != nil {
		st.ips = []events.IPAddress{{IPAddress: run.IP.String(), Protocol: "IPv4"}}
	}
	info, err := readProc(run.Pid)
	if err == nil {
		st.startTime = info.StartTime
		cp := checkpoint{Launch: req, RunAs: &st.runAs, Pid: run.Pid, StartTime: info.StartTime, BootID: bootID(), StartedAt: at, IPAddresses: st.ips}
		if group != nil {
			paths := group.Paths()
			cp.Cgroup = &paths
		}
		err = writeCheckpoint(a.checkpointDir(id), cp)
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = d.Runtime.Kill(cctx, id, 0)
		killAndReap(run.Pid)
		_, _ = d.Cleanup(cctx, id)
		return started{}, err
	}
	return st, nil
}

// signalContainer has the runtime send sig to task id's container.
func (a *Agent) signalContainer(id string, sig syscall.Signal) {
	if a.ctrs.runtimeErr != nil {
		a.log.Error("cannot signal a container: no runtime", "task", id, "err", a.ctrs.runtimeErr)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.ctrs.driver.Runtime.Signal(ctx, id, sig); err != nil {
		a.log.Debug("signal container", "task", id, "signal", sig, "err", err)
	}
}

// endContainer reports a container task whose runtime process ended:
// reaped here when it is our child (own), else its status is read from
// its bundle. Its cgroup is read for an OOM kill, then the container,
// its namespace and its root filesystem's mount go, and only then is its
// end reported: a master that sees it ended finds nothing of it left.
func (a *Agent) endContainer(t *task, own bool) {
	a.mu.Lock()
	if t.exited || t.ending {
		a.mu.Unlock()
		return
	}
	t.ending = true
	code, known := -1, false
	if own {
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(t.pid, &ws, 0, nil)
			if !errors.Is(err, syscall.EINTR) {
				if err == nil && ws.Exited() {
					code, known = ws.ExitStatus(), true
				}
				break
			}
		}
	}
	killing := t.killing
	a.mu.Unlock()
	end := a.containerEnding(t, code, known, killing)
	a.log.Info("container task ended", "task", t.id, "state", end.state, "message", end.msg)
	a.mu.Lock()
	a.finishLocked(t, end)
	a.mu.Unlock()
	a.destroyCgroup(t.id, t.cgroup)
}

// containerEnding is how a container that ended ended (code: its
// runtime's status when known), with what it had cleaned up.
func (a *Agent) containerEnding(t *task, code int, known, killing bool) ending {
	d := a.ctrs.driver
	if !known {
		code, known = d.ExitCode(t.id)
	}
	var oomMsg string
	oom := false
	if t.cgroup != nil && !killing {
		oomMsg, oom = t.cgroup.MemoryLimitExceeded()
	}
	var ended container.Ended
	if a.ctrs.runtimeErr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var err error
		if ended, err = d.Cleanup(ctx, t.id); err != nil {
			a.log.Error("cannot clean up after a container", "task", t.id, "err", err)
		}
	}
	if ended.OOMKilled && !oom && !killing {
		oom, oomMsg = true, "Memory limit exceeded"
	}
	if oom {
		return ending{state: events.TaskFailed, msg: oomMsg, reason: events.ReasonMemoryLimit}
	}
	var msg string
	switch {
	case !known:
		msg = "container exited (status unknown)"
	case code > 128 && code < 128+65:
		sig := syscall.Signal(code - 128)
		msg = fmt.Sprintf("container terminated by signal %d (%s)", int(sig), sig)
	default:
		msg = fmt.Sprintf("container exited with status %d", code)
	}
	switch {
	case killing:
		return ending{state: events.TaskKilled, msg: msg}
	case known && code == 0:
		return ending{state: events.TaskFinished, msg: msg}
	}
	return ending{state: events.TaskFailed, msg: msg}
}

// adoptContainer looks a re-adopted container task up in the runtime,
// for the log: its state and address. a.mu held (at recovery).
func (a *Agent) adoptContainer(t *task) {
	if a.ctrs.runtimeErr != nil {
		a.log.Error("adopted a container task, but the runtime is gone: it cannot be killed", "task", t.id, "err", a.ctrs.runtimeErr)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, ip, err := a.ctrs.driver.Adopt(ctx, t.id)
	if err != nil {
		a.log.Warn("adopted container not known to the runtime", "task", t.id, "err", err)
		return
	}
	a.log.Info("adopted container", "task", t.id, "status", st.Status, "init-pid", st.Pid, "ip", ip)
}

// sweepContainersLocked removes the runtime's containers that belong to
// no task the agent knows (a crash between start and checkpoint). At
// start, a.mu held.
func (a *Agent) sweepContainersLocked() {
	if a.ctrs.runtimeErr != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sts, err := a.ctrs.driver.Runtime.List(ctx)
	if err != nil {
		a.log.Error("cannot list containers", "err", err)
		return
	}
	for _, st := range sts {
		if _, ok := a.tasks[st.ID]; ok {
			continue
		}
		a.log.Info("removing the container of an unknown task", "container", st.ID)
		if _, err := a.ctrs.driver.Cleanup(ctx, st.ID); err != nil {
			a.log.Error("cannot remove container", "container", st.ID, "err", err)
		}
	}
}

package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/atollhq/atoll/agent/cninet"
	"github.com/atollhq/atoll/agent/container"
	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/freeport"
	"github.com/atollhq/atoll/internal/imagetest"
	"github.com/atollhq/atoll/internal/registrytest"
)

// testBridgeSubnet is the agents' bridge in these tests: in a namespace of
// the test's own (the machine's network stays untouched).
const testBridgeSubnet = "198.18.20.0/24"

// containerEnv is an agent test env plus what container tasks need: a
// registry on loopback with a test image, and a namespace playing the
// agent's host network, where the bridge lives and HOST:hostPort is
// reached.
type containerEnv struct {
	*testEnv
	reg    *registrytest.Registry
	hostNS string
	image  string // busybox httpd answering "hello $MESOS_TASK_ID" on 8080
}

// requireContainers: container tasks need root, runc and the CNI
// plugins; under CI=true their absence fails the run.
func requireContainers(t *testing.T) {
	t.Helper()
	var why string
	if os.Geteuid() != 0 {
		why = "containers need root"
	} else if _, err := container.NewRuntime("runc", filepath.Join(t.TempDir(), "runc")); err != nil {
		why = err.Error()
	} else if _, err := os.Stat("/usr/lib/cni/portmap"); err != nil {
		why = "CNI plugins missing (apt-get install containernetworking-plugins)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func newContainerEnv(t *testing.T) *containerEnv {
	requireContainers(t)
	e := &containerEnv{testEnv: newTestEnv(t), reg: registrytest.Start(t, registrytest.Options{})}
	e.hostNS = filepath.Join(t.TempDir(), "host-ns")
	if err := cninet.NewNetNS(e.hostNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cninet.RemoveNetNS(e.hostNS) })
	bb, err := imagetest.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	layer, err := imagetest.Layer(append(append(imagetest.Base(), bb...),
		imagetest.File{Path: "bin/httpd", Link: "busybox"}, imagetest.File{Path: "bin/mkdir", Link: "busybox"})...)
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagetest.Image(v1.Config{
		Env: []string{"PATH=/bin"},
		Cmd: []string{"/bin/sh", "-c", `echo "started $MESOS_TASK_ID"; mkdir -p /www && echo "hello $MESOS_TASK_ID" > /www/index.html && exec httpd -f -p 8080 -h /www`},
	}, layer)
	if err != nil {
		t.Fatal(err)
	}
	e.image = e.reg.Host + "/httpd:1"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := imagetest.Push(ctx, e.image, img, "", ""); err != nil {
		t.Fatal(err)
	}
	return e
}

// config is an agent config whose bridge lives in the env's namespace.
func (e *containerEnv) config() Config {
	cfg := e.testEnv.config()
	cfg.Containers = ContainerConfig{BridgeSubnet: testBridgeSubnet, BridgeNetNS: e.hostNS}
	return cfg
}

// leaveNoContainer removes, at the test's end, what a failed test may
// have left: the runtime's containers, their root filesystems' mounts
// and their namespaces' files.
func leaveNoContainer(t *testing.T, cfg Config, ids ...string) {
	t.Cleanup(func() {
		state := filepath.Join(cfg.WorkDir, "state")
		for _, id := range ids {
			_ = exec.Command("/usr/sbin/runc", "--root", filepath.Join(state, "runc"), "delete", "--force", id).Run()
			_ = syscall.Unmount(filepath.Join(state, "containers", id, "fs", "rootfs"), syscall.MNT_DETACH)
			_ = syscall.Unmount(filepath.Join(state, "cni", "netns", id), syscall.MNT_DETACH)
		}
	})
}

// bridgedLaunch runs the env's image as task id, its port 8080 on the
// host's hostPort.
func (e *containerEnv) bridgedLaunch(id string, hostPort int) events.LaunchRequest {
	req := shellTask(id, "")
	req.Cmd = ""
	req.Task.Ports = []int{hostPort}
	req.Limits = &events.TaskLimits{Cpus: 0.5, Mem: 64}
	req.Container = &events.ContainerLaunch{Image: e.image, Bridged: true,
		Ports: []events.ContainerPortLink{{HostPort: hostPort, ContainerPort: 8080, Protocol: "tcp"}}}
	return req
}

// get fetches / from addr inside the env's host namespace.
func (e *containerEnv) get(addr string) (string, error) {
	var body string
	err := cninet.InNetNS(e.hostNS, func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var sb strings.Builder
		_, err = bufio.NewReader(resp.Body).WriteTo(&sb)
		body = sb.String()
		return err
	})
	return body, err
}

// readFile asks the agent for a sandbox file, as the leader does.
func (e *containerEnv) readFile(req events.FileReadRequest) events.FileReadReply {
	e.t.Helper()
	data, _ := json.Marshal(req)
	msg, err := e.nc.Request(e.subj.Files(testNode), data, 10*time.Second)
	if err != nil {
		e.t.Fatalf("files request: %v", err)
	}
	var reply events.FileReadReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		e.t.Fatal(err)
	}
	return reply
}

func hostPort(t *testing.T) int {
	t.Helper()
	p, err := freeport.Reserve("127.0.0.1", false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A Marathon docs-style bridged app's task: pulled, run, reachable on
// HOST:hostPort, its address reported; its logs readable through the
// files verb; a kill removes the container and its namespace, and after
// the GC delay its sandbox and root filesystem.
func TestContainerTaskRunsBridgedAndKillRemovesIt(t *testing.T) {
	e := newContainerEnv(t)
	cfg := e.config()
	cfg.SandboxGCDelay = 2 * time.Second
	leaveNoContainer(t, cfg, "web.1")
	a := e.newAgent(cfg)
	a.gcInterval = 50 * time.Millisecond
	ra := e.start(a)
	id := e.registered(ra)

	port := hostPort(t)
	if ack := e.launch(id, e.bridgedLaunch("web.1", port)); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	running := e.master.waitStatus(t, "web.1", events.TaskRunning)
	if got := e.master.states("web.1"); len(got) < 2 || got[0] != events.TaskStarting {
		t.Errorf("states = %v, want TASK_STARTING before TASK_RUNNING", got)
	}
	_, subnet, _ := net.ParseCIDR(testBridgeSubnet)
	if len(running.IPAddresses) != 1 || running.IPAddresses[0].Protocol != "IPv4" || !subnet.Contains(net.ParseIP(running.IPAddresses[0].IPAddress)) {
		t.Fatalf("TASK_RUNNING ipAddresses = %+v, want one IPv4 in %s", running.IPAddresses, testBridgeSubnet)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	waitFor(t, 20*time.Second, "the container on "+addr, func() bool {
		body, err := e.get(addr)
		return err == nil && strings.TrimSpace(body) == "hello web.1"
	})

	// The files verb: stdout, its size, and nothing else.
	waitFor(t, 10*time.Second, "stdout through the files verb", func() bool {
		return strings.Contains(e.readFile(events.FileReadRequest{TaskID: "web.1", Path: "stdout"}).Data, "started web.1")
	})
	if r := e.readFile(events.FileReadRequest{TaskID: "web.1", Path: "stdout", Offset: -1}); r.Offset != int64(len("started web.1\n")) || r.Code != "" {
		t.Errorf("size of stdout = %+v", r)
	}
	if r := e.readFile(events.FileReadRequest{TaskID: "web.1", Path: "../x"}); r.Code != events.AckBadRequest {
		t.Errorf("path ../x: %+v, want bad_request", r)
	}
	if r := e.readFile(events.FileReadRequest{TaskID: "web.2", Path: "stdout"}); r.Code != events.AckUnknownTask {
		t.Errorf("unknown task: %+v, want unknown_task", r)
	}

	if ack := e.kill(id, events.KillRequest{TaskID: "web.1", KillGracePeriod: 2 * time.Second}); ack.Error != "" {
		t.Fatalf("kill: %s", ack.Error)
	}
	e.master.waitStatus(t, "web.1", events.TaskKilled)
	// Its sandbox stays for the delay (from its end, not its last write).
	if _, err := os.Stat(filepath.Join(cfg.WorkDir, "tasks", "web.1", "stdout")); err != nil {
		t.Errorf("the sandbox went at once: %v", err)
	}
	// Reported once nothing of it is left.
	if _, err := os.Stat(filepath.Join(cfg.WorkDir, "state", "cni", "netns", "web.1")); !os.IsNotExist(err) {
		t.Errorf("the task's network namespace after its end: %v", err)
	}
	if out, err := exec.Command("/usr/sbin/runc", "--root", filepath.Join(cfg.WorkDir, "state", "runc"), "list", "-q").Output(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("runc still lists %q (%v)", out, err)
	}
	if _, err := e.get(addr); err == nil {
		t.Error("the host port still answers after the kill")
	}
	// After the delay, its sandbox and root filesystem go.
	waitFor(t, 15*time.Second, "the sandbox and root filesystem collected", func() bool {
		_, err1 := os.Stat(filepath.Join(cfg.WorkDir, "tasks", "web.1"))
		_, err2 := os.Stat(filepath.Join(cfg.WorkDir, "state", "containers", "web.1"))
		return os.IsNotExist(err1) && os.IsNotExist(err2)
	})
}

// A restarted agent adopts its running container and can still kill it.
func TestContainerReadoptedAfterAgentRestart(t *testing.T) {
	e := newContainerEnv(t)
	cfg := e.config()
	cfg.KillTasksOnStop = false
	leaveNoContainer(t, cfg, "keep.1")
	first := e.start(e.newAgent(cfg))
	id := e.registered(first)
	port := hostPort(t)
	if ack := e.launch(id, e.bridgedLaunch("keep.1", port)); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	e.master.waitStatus(t, "keep.1", events.TaskRunning)
	first.stop(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// Running is when its process started, not yet when httpd listens.
	waitFor(t, 20*time.Second, "the container answering after its agent stopped", func() bool {
		body, err := e.get(addr)
		return err == nil && strings.TrimSpace(body) == "hello keep.1"
	})

	regs := e.master.registerCount()
	cfg.NC = e.connect()
	cfg.KillTasksOnStop = true
	second := e.start(e.newAgent(cfg))
	waitFor(t, 10*time.Second, "re-registration", func() bool { return e.master.registerCount() > regs })
	if tasks := withoutStatistics(e.master.lastRegister().Tasks); len(tasks) != 1 || tasks[0].State != events.TaskRunning {
		t.Fatalf("re-registered with %+v, want keep.1 running", tasks)
	}
	if ack := e.kill(second.ID(), events.KillRequest{TaskID: "keep.1", KillGracePeriod: 2 * time.Second}); ack.Error != "" {
		t.Fatalf("kill: %s", ack.Error)
	}
	upd := e.master.waitStatus(t, "keep.1", events.TaskKilled)
	if !strings.Contains(upd.Message, "container") {
		t.Errorf("message %q", upd.Message)
	}
	if _, err := e.get(addr); err == nil {
		t.Error("the host port still answers after the kill")
	}
	if _, err := os.Stat(filepath.Join(cfg.WorkDir, "state", "cni", "netns", "keep.1")); !os.IsNotExist(err) {
		t.Errorf("the task's network namespace after its end: %v", err)
	}
}

// A bad reference, an unreachable registry, a missing runtime: the task
// fails at once, saying why; the agent runs on.
func TestContainerStartFailuresAreClear(t *testing.T) {
	e := newContainerEnv(t)
	fails := func(a *runningAgent, task, image, want string) {
		t.Helper()
		req := shellTask(task, "")
		req.Container = &events.ContainerLaunch{Image: image}
		start := time.Now()
		if ack := e.launch(a.ID(), req); ack.Error != "" {
			t.Fatalf("%s: launch: %s", task, ack.Error)
		}
		upd := e.master.waitStatus(t, task, events.TaskFailed)
		if !strings.Contains(upd.Message, want) {
			t.Errorf("%s: message %q, want %q in it", task, upd.Message, want)
		}
		t.Logf("%s failed after %v: %s", task, time.Since(start), upd.Message)
	}
	a := e.start(e.newAgent(e.config()))
	e.registered(a)
	fails(a, "bad.1", "BAD//ref", "invalid image reference")
	fails(a, "gone.1", "127.0.0.1:1/echo:1", "unreachable")
	a.stop(t)

	// An agent without the runtime runs host tasks, and fails container
	// tasks with the reason.
	cfg := e.config()
	cfg.Containers.Runtime = "runc-not-installed"
	b := e.start(e.newAgent(cfg))
	e.registered(b)
	fails(b, "noruntime.1", e.image, "container runtime runc-not-installed not found")
	if ack := e.launch(b.ID(), shellTask("host.1", "exit 0")); ack.Error != "" {
		t.Fatal(ack.Error)
	}
	e.master.waitStatus(t, "host.1", events.TaskFinished)
}

// A container past its memory limit is killed by the kernel and ends as
// Mesos's memory limitation; a COMMAND health check runs inside the
// container (the file it tests exists only there).
func TestContainerMemoryLimitAndCommandCheck(t *testing.T) {
	e := newContainerEnv(t)
	cfg := e.config()
	leaveNoContainer(t, cfg, "hog.1", "checked.1")
	a := e.start(e.newAgent(cfg))
	id := e.registered(a)

	hog := shellTask("hog.1", "dd if=/dev/zero of=/dev/null bs=64M count=1")
	hog.Limits = &events.TaskLimits{Cpus: 0.5, Mem: 32}
	hog.Container = &events.ContainerLaunch{Image: e.image}
	if ack := e.launch(id, hog); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	upd := e.master.waitStatus(t, "hog.1", events.TaskFailed)
	if upd.Reason != events.ReasonMemoryLimit || !strings.HasPrefix(upd.Message, "Memory limit exceeded") {
		t.Errorf("hog.1 ended %q (reason %q), want the memory limitation", upd.Message, upd.Reason)
	}

	req := e.bridgedLaunch("checked.1", hostPort(t))
	req.HealthChecks = []events.HealthCheck{{
		Protocol: "COMMAND",
		Command: &struct {
			Value string `json:"value"`
		}{Value: `[ -f /www/index.html ] && [ "$MESOS_TASK_ID" = checked.1 ]`},
		GracePeriodSeconds: 60, IntervalSeconds: 1, TimeoutSeconds: 10, MaxConsecutiveFailures: 3,
	}}
	if ack := e.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	if up := e.master.waitHealth(t, "checked.1", 1); healthState(up) != "healthy" {
		t.Errorf("health of checked.1: %+v", up.HealthCheckResults)
	}
}

// A container that ended while no agent ran is reported by the next one
// with its exit status, and cleaned up.
func TestContainerThatEndedWhileTheAgentWasDown(t *testing.T) {
	e := newContainerEnv(t)
	cfg := e.config()
	cfg.KillTasksOnStop = false
	leaveNoContainer(t, cfg, "quit.1")
	first := e.start(e.newAgent(cfg))
	id := e.registered(first)
	req := shellTask("quit.1", `while [ ! -f "$MESOS_SANDBOX/stop" ]; do sleep 0.05; done; exit 3`)
	req.Container = &events.ContainerLaunch{Image: e.image}
	if ack := e.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	e.master.waitStatus(t, "quit.1", events.TaskRunning)
	first.stop(t)
	cp := checkpointOf(t, cfg, "quit.1")
	t.Cleanup(func() {
		// The runtime's process was the test process's child (the
		// agent ran in it): gone or killed, it is reaped here.
		_ = syscall.Kill(-cp.Pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(cp.Pid, &ws, 0, nil)
	})
	if err := os.WriteFile(filepath.Join(cfg.WorkDir, "tasks", "quit.1", "stop"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the container's end", func() bool { return !alive(cp.Pid, cp.StartTime) })

	cfg.NC = e.connect()
	e.start(e.newAgent(cfg))
	upd := e.master.waitStatus(t, "quit.1", events.TaskFailed)
	if upd.Message != "container exited with status 3 while the agent was down" {
		t.Errorf("message %q", upd.Message)
	}
	if out, err := exec.Command("/usr/sbin/runc", "--root", filepath.Join(cfg.WorkDir, "state", "runc"), "list", "-q").Output(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("runc still lists %q (%v)", out, err)
	}
}

// A kill while the image is still being pulled gives the pull up: the
// task ends killed, at once.
func TestContainerKilledWhilePulling(t *testing.T) {
	e := newContainerEnv(t)
	// A "registry" that takes connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	})
	a := e.start(e.newAgent(e.config()))
	id := e.registered(a)
	req := shellTask("slow.1", "")
	req.Container = &events.ContainerLaunch{Image: l.Addr().String() + "/slow:1"}
	if ack := e.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	select {
	case c := <-accepted:
		accepted <- c
	case <-time.After(15 * time.Second):
		t.Fatal("the agent never reached the registry")
	}
	start := time.Now()
	if ack := e.kill(id, events.KillRequest{TaskID: "slow.1"}); ack.Error != "" {
		t.Fatalf("kill: %s", ack.Error)
	}
	upd := e.master.waitStatus(t, "slow.1", events.TaskKilled)
	t.Logf("killed %v after the kill: %s", time.Since(start), upd.Message)
	if got := e.master.states("slow.1"); len(got) != 2 || got[0] != events.TaskKilling {
		t.Errorf("states = %v, want TASK_KILLING, TASK_KILLED", got)
	}
}

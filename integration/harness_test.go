package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/atollhq/atoll/agent"
	"github.com/atollhq/atoll/internal/cgroup"
	"github.com/atollhq/atoll/internal/natsauth"
)

// atollBin is the binary under test, built once by TestMain.
var atollBin string

func TestMain(m *testing.M) {
	if bin := os.Getenv(binEnv); bin != "" {
		// A test run again in a network namespace (netns_test.go): the
		// binary is its parent's.
		atollBin = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "atoll-it-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Tasks run as nobody and exec atoll (atoll echo): its folder must
	// be theirs to enter (MkdirTemp makes it 0700).
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	atollBin = filepath.Join(dir, "atoll")
	// Static (no cgo): container tests put the same binary into images,
	// which have no libc.
	build := exec.Command("go", "build", "-o", atollBin, "../cmd/atoll")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build atoll:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one atoll process with its log file.
type proc struct {
	name string
	args []string
	cmd  *exec.Cmd
	log  string
}

// cluster is a NATS server (in this process), one master and agents (as
// processes), all on loopback, in a folder of the test's own.
type cluster struct {
	t            *testing.T
	dir          string
	nats         *natsEnv
	httpAddr     string
	api          string
	agentTimeout time.Duration
	master       *proc
	agents       []*proc
	// masters are the candidates of an HA cluster (ha_helpers_test.go);
	// master is nil there.
	masters     []*proc
	masterAddrs []string
	agentArgs   []string // more flags for every agent
	// agentArgsFor gives agent i flags of its own (clusterOptions).
	agentArgsFor func(i int) []string
}

type clusterOptions struct {
	agents       int
	agentTimeout time.Duration
	agentArgs    []string // more flags for every agent
	// agentArgsFor, when set, gives agent i (from 1) flags of its own.
	agentArgsFor func(i int) []string
}

func startCluster(t *testing.T, o clusterOptions) *cluster {
	t.Helper()
	if o.agentTimeout == 0 {
		o.agentTimeout = 15 * time.Second
	}
	dir := passableTempDir(t)
	c := &cluster{t: t, dir: dir, nats: startNATS(t, dir), httpAddr: freeAddr(t), agentTimeout: o.agentTimeout,
		agentArgs: o.agentArgs, agentArgsFor: o.agentArgsFor}
	c.api = "http://" + c.httpAddr
	t.Cleanup(c.stop)
	c.startMaster()
	for i := 1; i <= o.agents; i++ {
		c.agents = append(c.agents, nil)
		c.startAgent(i)
	}
	c.waitFor(20*time.Second, fmt.Sprintf("%d active agents", o.agents), func() (bool, string) {
		n := c.activeAgents()
		return n == o.agents, fmt.Sprintf("%d active", n)
	})
	return c
}

func (c *cluster) start(name string, args ...string) *proc {
	c.t.Helper()
	p := &proc{name: name, args: args, log: filepath.Join(c.dir, name+".log")}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	p.cmd = exec.Command(atollBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	return p
}

func (c *cluster) startMaster() {
	c.t.Helper()
	c.master = c.start("master", append([]string{"master"}, append(c.nats.args(natsauth.RoleMaster, "master-1"),
		"--http", c.httpAddr,
		"--data-dir", filepath.Join(c.dir, "master"),
		"--agent-timeout", c.agentTimeout.String(), "--hostname", "master-1")...)...)
	// /ping answers as soon as the API listens; /v2/leader only once the
	// master has loaded its state and leads.
	c.waitFor(15*time.Second, "master leads (/v2/leader)", func() (bool, string) {
		code, _ := c.do("GET", "/v2/leader", nil)
		return code == 200, fmt.Sprintf("status %d", code)
	})
}

// agentIP is where agent i advertises: away from `atoll dev`'s 127.0.0.2-4,
// and in a 127.N.1.0/24 of this test process's own, so that tasks of two
// `go test` runs at once (they use the same agent port ranges) never
// take each other's ports.
func agentIP(i int) string { return fmt.Sprintf("127.%d.1.%d", agentNet, i) }

// agentNet is the second byte of this process's agent addresses.
var agentNet = 1 + os.Getpid()%250

func (c *cluster) startAgent(i int) {
	c.t.Helper()
	base := 41000 + i*100
	name := fmt.Sprintf("agent-%d", i)
	args := append(append([]string{"agent"}, c.nats.args(natsauth.RoleAgent, name)...),
		"--hostname", name,
		"--advertise-ip", agentIP(i), "--attributes", fmt.Sprintf("region:r%d;rack:rack-%d", i, i),
		"--cpus", "4", "--mem", "4096", "--disk", "10000",
		"--ports", fmt.Sprintf("%d-%d", base, base+99),
		"--work-dir", filepath.Join(c.dir, fmt.Sprintf("agent-%d", i)),
		"--heartbeat", "250ms")
	args = append(args, c.agentArgs...)
	if c.agentArgsFor != nil {
		args = append(args, c.agentArgsFor(i)...)
	}
	c.agents[i-1] = c.start(name, args...)
}

// signal sends sig to a process and waits for it to exit.
func (c *cluster) signal(p *proc, sig syscall.Signal) {
	c.t.Helper()
	if p == nil || p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// stop ends everything the cluster started, tasks included, and shows the
// logs of a failed test.
func (c *cluster) stop() {
	if c.t.Failed() {
		for _, p := range append(append([]*proc{c.master}, c.masters...), c.agents...) {
			if p != nil {
				data, _ := os.ReadFile(p.log)
				c.t.Logf("---- %s log (last 4 KB) ----\n%s", p.name, tail(data, 4096))
			}
		}
	}
	for _, p := range c.agents {
		c.signal(p, syscall.SIGTERM)
	}
	c.signal(c.master, syscall.SIGTERM)
	for _, p := range c.masters {
		if p != nil && p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGCONT) // a test may have left one stopped
		}
		c.signal(p, syscall.SIGTERM)
	}
	// Agents leave tasks running on purpose (they are re-adopted after a
	// restart); the test's tasks must not outlive it.
	for _, pid := range taskPIDs(c.dir, "") {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	c.removeAgentCgroups()
	c.nats.Shutdown()
}

// removeAgentCgroups removes what the agents left in cgroups: their
// tasks' cgroups (whatever still runs there is killed) and their parents.
// The agents ran as this process's children, in its cgroups, so their
// parents resolve here as they did there.
func (c *cluster) removeAgentCgroups() {
	for i, p := range c.agents {
		if p == nil {
			continue
		}
		name := fmt.Sprintf("agent-%d", i+1)
		parent, err := cgroup.OpenParent(agent.DefaultCgroupParent(name, filepath.Join(c.dir, name)), cgroup.Limits{})
		if err != nil {
			c.t.Logf("agent cgroups of %s: %v", name, err)
			continue
		}
		names, _ := parent.Children()
		for _, n := range names {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := parent.Child(n).Destroy(ctx); err != nil {
				c.t.Logf("task cgroup %s of %s: %v", n, name, err)
			}
			cancel()
		}
		if err := parent.RemoveIfEmpty(); err != nil {
			c.t.Logf("agent cgroup of %s: %v", name, err)
		}
	}
}

// passableTempDir is t.TempDir() with search permission for everyone on it
// and on the folder Go made above it (both 0700): the agents' work dirs go
// inside, and their tasks, which run as nobody, must reach their
// sandboxes.
func passableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// do calls the master's API and returns the status and body.
func (c *cluster) do(method, path string, body any) (int, []byte) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.api+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// mustDo is do that fails the test on an unexpected status.
func (c *cluster) mustDo(method, path string, body any, want int, into any) {
	c.t.Helper()
	code, data := c.do(method, path, body)
	if code != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, data)
	}
	if into != nil {
		if err := json.Unmarshal(data, into); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func (c *cluster) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for %s (last: %s)", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type apiTask struct {
	ID          string `json:"id"`
	AppID       string `json:"appId"`
	SlaveID     string `json:"slaveId"`
	Host        string `json:"host"`
	State       string `json:"state"`
	Ports       []int  `json:"ports"`
	IPAddresses []struct {
		IPAddress string `json:"ipAddress"`
	} `json:"ipAddresses"`
}

func (c *cluster) tasks(appID string) []apiTask {
	c.t.Helper()
	var body struct {
		Tasks []apiTask `json:"tasks"`
	}
	code, data := c.do("GET", "/v2/apps"+appID+"/tasks", nil)
	if code != 200 {
		return nil
	}
	_ = json.Unmarshal(data, &body)
	return body.Tasks
}

func countState(ts []apiTask, state string) int {
	n := 0
	for _, t := range ts {
		if t.State == state {
			n++
		}
	}
	return n
}

func (c *cluster) activeAgents() int {
	var st struct {
		Slaves []struct {
			Active bool `json:"active"`
		} `json:"slaves"`
	}
	code, data := c.do("GET", "/master/state", nil)
	if code != 200 || json.Unmarshal(data, &st) != nil {
		return -1
	}
	n := 0
	for _, s := range st.Slaves {
		if s.Active {
			n++
		}
	}
	return n
}

// taskPIDs finds the live task processes started by this test's agents
// (their sandbox is under dir), optionally of one app only.
func taskPIDs(dir, appID string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if isZombie(pid) {
			continue
		}
		var sandbox, app string
		for _, kv := range bytes.Split(env, []byte{0}) {
			s := string(kv)
			switch {
			case strings.HasPrefix(s, "MESOS_SANDBOX="):
				sandbox = strings.TrimPrefix(s, "MESOS_SANDBOX=")
			case strings.HasPrefix(s, "MARATHON_APP_ID="):
				app = strings.TrimPrefix(s, "MARATHON_APP_ID=")
			}
		}
		if sandbox == "" || !strings.HasPrefix(sandbox, dir) || (appID != "" && app != appID) {
			continue
		}
		// Only the task's leader process: /bin/sh -c may fork the command.
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isZombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// echoTask asks a task's echo server who it is.
func echoTask(t apiTask) (string, error) {
	if len(t.IPAddresses) == 0 || len(t.Ports) == 0 {
		return "", fmt.Errorf("task %s has no address", t.ID)
	}
	url := fmt.Sprintf("http://%s/", net.JoinHostPort(t.IPAddresses[0].IPAddress, strconv.Itoa(t.Ports[0])))
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		TaskID string `json:"taskId"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	return body.TaskID, nil
}

func echoApp(id string, instances int, constraints ...[]string) map[string]any {
	app := map[string]any{
		"id": id, "cmd": "atoll echo", "instances": instances, "cpus": 0.1, "mem": 16,
		"portDefinitions": []map[string]any{{"port": 0}},
		"backoffSeconds":  0.2,
	}
	if len(constraints) > 0 {
		app["constraints"] = constraints
	}
	return app
}

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/lbsync"
)

// lbNode is one `atoll lb` process started by a test, with the files and
// addresses of its HAProxy.
type lbNode struct {
	c         *cluster
	name      string
	proc      *proc
	dir       string // haproxy.cfg, maps and sockets
	bindAddr  string
	httpPort  int
	statsAddr string
	master    *lbsync.Process // only its master socket is used
}

// lbNodeOptions are the flags that differ between the lbs of a test.
type lbNodeOptions struct {
	name     string // "lb" if empty; also the process's log name
	bindAddr string // 127.0.0.1 if empty
	sse      string // follow this base URL's /v2/events instead of NATS
}

// lbStart runs `atoll lb` against c (NATS unless o.sse is set) on free
// ports of its own. The process is stopped when the test ends, and its
// log shown if the test failed.
func lbStart(c *cluster, o lbNodeOptions) *lbNode {
	c.t.Helper()
	if o.name == "" {
		o.name = "lb"
	}
	if o.bindAddr == "" {
		o.bindAddr = "127.0.0.1"
	}
	n := &lbNode{c: c, name: o.name, dir: filepath.Join(c.dir, o.name+"-haproxy"), bindAddr: o.bindAddr,
		httpPort: lbFreePort(c.t, o.bindAddr), statsAddr: freeAddr(c.t)}
	args := []string{"lb", "--haproxy-config", filepath.Join(n.dir, "haproxy.cfg"),
		"--bind-addr", n.bindAddr, "--http-port", strconv.Itoa(n.httpPort), "--stats", n.statsAddr,
		"--min-reload-interval", "100ms", "--metrics-addr", freeAddr(c.t)}
	if o.sse != "" {
		args = append(args, "--sse", o.sse)
	} else {
		args = append(args, c.nats.args(natsauth.RoleSidecar, o.name)...)
	}
	n.proc = c.start(o.name, args...)
	n.master = &lbsync.Process{MasterSocket: filepath.Join(n.dir, "master.sock")}
	c.t.Cleanup(func() {
		c.signal(n.proc, syscall.SIGTERM)
		if c.t.Failed() {
			data, _ := os.ReadFile(n.proc.log)
			c.t.Logf("---- %s log (last 8 KB) ----\n%s", n.name, tail(data, 8192))
		}
	})
	return n
}

// configPath is the live haproxy.cfg.
func (n *lbNode) configPath() string { return filepath.Join(n.dir, "haproxy.cfg") }

// front is bindAddr:port.
func (n *lbNode) front(port int) string { return net.JoinHostPort(n.bindAddr, strconv.Itoa(port)) }

// showProc asks the HAProxy master for its reload counter and workers.
// While it reloads, the master re-executes itself and its socket refuses
// connections for a moment: showProc asks again until it answers, and
// fails the test when it does not within 10 s.
func (n *lbNode) showProc() lbsync.ProcInfo {
	n.c.t.Helper()
	var info lbsync.ProcInfo
	n.c.waitFor(10*time.Second, n.name+": the HAProxy master to answer show proc", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		info, err = n.master.ShowProc(ctx)
		if err != nil {
			if n.exited() {
				n.c.t.Fatalf("%s exited (see its log): %v", n.name, err)
			}
			return false, err.Error()
		}
		return true, ""
	})
	return info
}

// exited reports whether the lb process has ended (nobody waits for it
// while the test runs, so it stays a zombie).
func (n *lbNode) exited() bool {
	return n.proc.cmd.ProcessState != nil || isZombie(n.proc.cmd.Process.Pid)
}

// lbAsk sends n GETs to addr (with Host header host unless empty), each on
// a new connection, and returns the task ids that answered (sorted, no
// repeats) and the other answers (status and body, or the error).
func lbAsk(addr, host string, n int) (ids []string, other []string) {
	seen := map[string]bool{}
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
		if err != nil {
			panic(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := client.Do(req)
		if err != nil {
			other = append(other, err.Error())
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var reply struct {
			TaskID string `json:"taskId"`
		}
		if resp.StatusCode == 200 && json.Unmarshal(body, &reply) == nil && reply.TaskID != "" {
			seen[reply.TaskID] = true
			continue
		}
		other = append(other, fmt.Sprintf("status %d: %.200q", resp.StatusCode, body))
	}
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, other
}

// lbWaitServed waits until requests to addr (Host: host) reach exactly
// the running tasks of appID, every one of them and no other, and nothing
// fails. The tasks are read again on every try: one that fails is
// replaced, and then its replacement must be served.
func (c *cluster) lbWaitServed(addr, host, appID string, timeout time.Duration) []apiTask {
	c.t.Helper()
	var ts []apiTask
	c.waitFor(timeout, fmt.Sprintf("requests to %s (Host %q) to reach exactly the running tasks of %s", addr, host, appID), func() (bool, string) {
		ts = ts[:0]
		for _, task := range c.tasks(appID) {
			if task.State == "TASK_RUNNING" {
				ts = append(ts, task)
			}
		}
		want := ids(ts)
		got, other := lbAsk(addr, host, 4*len(want)+4)
		return len(want) > 0 && slices.Equal(got, want) && len(other) == 0,
			fmt.Sprintf("running %v, reached %v, other answers %q", want, got, other)
	})
	return ts
}

// lbDeploymentsDone is true when the master runs no deployment.
func (c *cluster) lbDeploymentsDone() (bool, string) {
	code, data := c.do("GET", "/v2/deployments", nil)
	if code != 200 {
		return false, fmt.Sprintf("GET /v2/deployments: %d %s", code, data)
	}
	var deps []json.RawMessage
	if err := json.Unmarshal(data, &deps); err != nil {
		return false, err.Error()
	}
	return len(deps) == 0, fmt.Sprintf("%d deployments", len(deps))
}

// lbWaitSteady waits until no deployment runs and appID has exactly n
// tasks, all running, each with its own process and no other process.
func (c *cluster) lbWaitSteady(appID string, n int, timeout time.Duration) []apiTask {
	c.t.Helper()
	var ts []apiTask
	c.waitFor(timeout, fmt.Sprintf("%s: steady with %d running tasks", appID, n), func() (bool, string) {
		if ok, st := c.lbDeploymentsDone(); !ok {
			return false, st
		}
		ts = c.tasks(appID)
		running := countState(ts, "TASK_RUNNING")
		procs := len(taskPIDs(c.dir, appID))
		return running == n && len(ts) == n && procs == n, fmt.Sprintf("%d tasks, %d running, %d processes", len(ts), running, procs)
	})
	return ts
}

// lbServiceApp is an echo app served by the lb on the given service ports.
func lbServiceApp(id string, instances int, labels map[string]string, servicePorts ...int) map[string]any {
	app := echoApp(id, instances)
	var defs []map[string]any
	for _, p := range servicePorts {
		defs = append(defs, map[string]any{"port": p})
	}
	app["portDefinitions"] = defs
	all := map[string]string{"HAPROXY_GROUP": "external"}
	for k, v := range labels {
		all[k] = v
	}
	app["labels"] = all
	return app
}

// lbTaskSet is the task ids of ts, for membership tests.
func lbTaskSet(ts []apiTask) map[string]bool {
	m := make(map[string]bool, len(ts))
	for _, t := range ts {
		m[t.ID] = true
	}
	return m
}

// lbLines is s split into lines, for diffs.
func lbLines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

// lbTryListen listens on addr:port, to find a port free on several
// addresses.
func lbTryListen(addr string, port int) (net.Listener, error) {
	return net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
}

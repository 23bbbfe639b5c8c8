// Package zktest runs a real ZooKeeper ensemble (Debian's zookeeper
// package) on loopback for tests: every node is a foreground Java process
// owned by the test binary, on ports from internal/freeport.
package zktest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/atollhq/atoll/internal/freeport"
)

// Where Debian's zookeeper package puts its jar. The jar's manifest lists
// its dependencies but no slf4j binding; the two log4j jars give the nodes
// a log to show when they fail to start.
const (
	zkJar = "/usr/share/java/zookeeper.jar"
	// TickTime keeps session timeouts (2 to 20 ticks) short.
	TickTime = 200 * time.Millisecond
)

var classPath = strings.Join([]string{
	zkJar,
	"/usr/share/java/slf4j-log4j12.jar",
	"/usr/share/java/log4j-1.2.jar",
	"/etc/zookeeper/conf",
}, ":")

// ErrNotInstalled is returned by Launch when java or the ZooKeeper jar is
// missing.
var ErrNotInstalled = errors.New("zktest: zookeeper not installed (apt-get install zookeeper)")

// startTimeout bounds how long an ensemble may take to elect a leader on a
// loaded machine.
const startTimeout = 60 * time.Second

// Ensemble is a running ZooKeeper ensemble.
type Ensemble struct {
	// Connect is the client connect string "127.0.0.1:p1,127.0.0.1:p2,...".
	Connect string
	// Servers are the client addresses, one per node.
	Servers []string

	mu    sync.Mutex
	java  string
	heap  string // -Xmx
	nodes []*node
}

// Options shape an ensemble.
type Options struct {
	// MaxHeapMB is each node's Java heap limit; 0 is 128 MB, enough for
	// tests. A benchmark holding 100,000 task znodes needs about 1 GB.
	MaxHeapMB int
}

type node struct {
	id         int // 1-based, as myid
	dir        string
	clientAddr string
	cmd        *exec.Cmd
	exited     chan struct{}
}

// Installed reports whether Launch can work here.
func Installed() bool {
	if _, err := exec.LookPath("java"); err != nil {
		return false
	}
	_, err := os.Stat(zkJar)
	return err == nil
}

// Start launches an n-node ensemble for t and stops it when t ends. Without
// ZooKeeper installed it skips t, or fails it under CI=true.
func Start(t testing.TB, n int) *Ensemble {
	t.Helper()
	Require(t)
	e, err := Launch(t.TempDir(), n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// Require skips t when ZooKeeper is not installed, except under CI=true,
// where a missing ZooKeeper fails the run.
func Require(t testing.TB) {
	t.Helper()
	if Installed() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(ErrNotInstalled)
	}
	t.Skip(ErrNotInstalled)
}

// Launch starts an n-node ensemble in dir (n == 1: a standalone server)
// and waits until every node serves. Close stops it.
func Launch(dir string, n int) (*Ensemble, error) { return LaunchWith(dir, n, Options{}) }

// LaunchWith is Launch with options.
func LaunchWith(dir string, n int, o Options) (*Ensemble, error) {
	if n < 1 {
		return nil, fmt.Errorf("zktest: %d nodes", n)
	}
	if o.MaxHeapMB < 0 {
		return nil, fmt.Errorf("zktest: heap of %d MB", o.MaxHeapMB)
	}
	if !Installed() {
		return nil, ErrNotInstalled
	}
	java, _ := exec.LookPath("java")
	heap := 128
	if o.MaxHeapMB > 0 {
		heap = o.MaxHeapMB
	}
	e := &Ensemble{java: java, heap: fmt.Sprintf("-Xmx%dm", heap)}
	type ports struct{ client, peer, election int }
	ps := make([]ports, n)
	for i := range ps {
		var err error
		for _, p := range []*int{&ps[i].client, &ps[i].peer, &ps[i].election} {
			if *p, err = freeport.Reserve("127.0.0.1", false); err != nil {
				return nil, fmt.Errorf("zktest: %w", err)
			}
		}
	}
	var servers strings.Builder
	if n > 1 {
		for i, p := range ps {
			fmt.Fprintf(&servers, "server.%d=127.0.0.1:%d:%d\n", i+1, p.peer, p.election)
		}
	}
	for i, p := range ps {
		nd := &node{
			id:         i + 1,
			dir:        filepath.Join(dir, "zk"+strconv.Itoa(i+1)),
			clientAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.client)),
		}
		cfg := fmt.Sprintf(`tickTime=%d
initLimit=10
syncLimit=5
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,stat,mntr,srvr
%s`, TickTime.Milliseconds(), nd.dir, p.client, servers.String())
		if err := os.MkdirAll(nd.dir, 0o755); err != nil {
			return nil, fmt.Errorf("zktest: %w", err)
		}
		if err := os.WriteFile(filepath.Join(nd.dir, "myid"), []byte(strconv.Itoa(nd.id)+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("zktest: %w", err)
		}
		if err := os.WriteFile(filepath.Join(nd.dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
			return nil, fmt.Errorf("zktest: %w", err)
		}
		e.nodes = append(e.nodes, nd)
		e.Servers = append(e.Servers, nd.clientAddr)
	}
	e.Connect = strings.Join(e.Servers, ",")
	for i := range e.nodes {
		if err := e.spawn(i); err != nil {
			e.Close()
			return nil, err
		}
	}
	if err := e.WaitReady(startTimeout); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// spawn starts node i's process. e.mu must not be held.
func (e *Ensemble) spawn(i int) error {
	nd := e.nodes[i]
	logf, err := os.OpenFile(filepath.Join(nd.dir, "zookeeper.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("zktest: node %d: %w", nd.id, err)
	}
	cmd := exec.Command(e.java,
		"-Dzookeeper.log.dir="+nd.dir,
		"-Dzookeeper.root.logger=INFO,CONSOLE",
		"-Dlog4j.configuration=file:/etc/zookeeper/conf/log4j.properties",
		// Test data is thrown away: no fsync per write.
		"-Dzookeeper.forceSync=no",
		// Small, fast-starting JVMs: three share two cores with the tests.
		"-Xms16m", e.heap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", classPath,
		"org.apache.zookeeper.server.quorum.QuorumPeerMain",
		filepath.Join(nd.dir, "zoo.cfg"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// A test binary that dies must not leave servers behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("zktest: start node %d: %w", nd.id, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	e.mu.Lock()
	nd.cmd, nd.exited = cmd, exited
	e.mu.Unlock()
	return nil
}

// Len is the number of nodes.
func (e *Ensemble) Len() int { return len(e.nodes) }

// Addr is node i's client address (0-based).
func (e *Ensemble) Addr(i int) string { return e.nodes[i].clientAddr }

// Stop kills node i (0-based) as a crash would and waits until it is gone.
func (e *Ensemble) Stop(i int) {
	e.mu.Lock()
	nd := e.nodes[i]
	cmd, exited := nd.cmd, nd.exited
	nd.cmd = nil
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Start restarts a stopped node i (0-based) with its data and ports; it
// does not wait for it to serve (see WaitReady).
func (e *Ensemble) Start(i int) error {
	e.mu.Lock()
	running := e.nodes[i].cmd != nil
	e.mu.Unlock()
	if running {
		return nil
	}
	return e.spawn(i)
}

// Close stops every node.
func (e *Ensemble) Close() {
	for i := range e.nodes {
		e.Stop(i)
	}
}

// WaitReady waits until every running node answers srvr with a serving
// mode (leader, follower or standalone).
func (e *Ensemble) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i, nd := range e.nodes {
		e.mu.Lock()
		running := nd.cmd != nil
		exited := nd.exited
		e.mu.Unlock()
		if !running {
			continue
		}
		for {
			mode, err := e.Mode(i)
			if err == nil && (mode == "leader" || mode == "follower" || mode == "standalone") {
				break
			}
			select {
			case <-exited:
				return fmt.Errorf("zktest: node %d exited while starting; log tail:\n%s", nd.id, e.LogTail(i, 30))
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("zktest: node %d (%s) not serving after %s (mode %q, err %v); log tail:\n%s",
					nd.id, nd.clientAddr, timeout, mode, err, e.LogTail(i, 30))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// Mode is node i's answer to srvr: leader, follower or standalone.
func (e *Ensemble) Mode(i int) (string, error) {
	out, err := FourLetter(e.nodes[i].clientAddr, "srvr")
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m, ok := strings.CutPrefix(sc.Text(), "Mode: "); ok {
			return strings.TrimSpace(m), nil
		}
	}
	return "", fmt.Errorf("zktest: %s srvr: no mode in %q", e.nodes[i].clientAddr, out)
}

// FourLetter sends a four-letter command to a ZooKeeper server.
func FourLetter(addr, cmd string) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(c)
	return buf.Bytes(), err
}

// LogTail is the last n lines of node i's log.
func (e *Ensemble) LogTail(i, n int) string {
	data, err := os.ReadFile(filepath.Join(e.nodes[i].dir, "zookeeper.out"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package master

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/atollhq/atoll/internal/zktest"
)

// One ZooKeeper ensemble serves every test of the package (starting one
// takes seconds); tests keep apart by using their own root znode.
var sharedZK struct {
	once sync.Once
	dir  string
	e    *zktest.Ensemble
	err  error
	n    atomic.Int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedZK.e != nil {
		sharedZK.e.Close()
	}
	if sharedZK.dir != "" {
		os.RemoveAll(sharedZK.dir)
	}
	if benchZK.e != nil {
		benchZK.e.Close()
	}
	if benchZK.dir != "" {
		os.RemoveAll(benchZK.dir)
	}
	os.Exit(code)
}

// testZK is the package's 3-node ensemble, started on first use. A test
// that stops a node must start it again before it ends (see stopZKNode).
func testZK(t *testing.T) *zktest.Ensemble {
	t.Helper()
	zktest.Require(t)
	sharedZK.once.Do(func() {
		sharedZK.dir, sharedZK.err = os.MkdirTemp("", "atoll-master-zk")
		if sharedZK.err == nil {
			sharedZK.e, sharedZK.err = zktest.Launch(sharedZK.dir, 3)
		}
	})
	if sharedZK.err != nil {
		t.Fatal(sharedZK.err)
	}
	return sharedZK.e
}

// stopZKNode stops node i of the shared ensemble until the test ends.
func stopZKNode(t *testing.T, e *zktest.Ensemble, i int) {
	t.Helper()
	e.Stop(i)
	t.Cleanup(func() {
		if err := e.Start(i); err != nil {
			t.Fatal(err)
		}
		if err := e.WaitReady(60 * time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

// zkRoot is a root znode no other test uses.
func zkRoot(t *testing.T) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return fmt.Sprintf("/test/%s-%d", name, sharedZK.n.Add(1))
}

// zkConnect opens a session to servers, closed when the test ends.
func zkConnect(t *testing.T, servers []string) *zk.Conn {
	t.Helper()
	conn, evs, err := zk.Connect(servers, 2*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-evs:
			if ev.State == zk.StateHasSession {
				return conn
			}
		case <-deadline:
			t.Fatalf("no zookeeper session with %v", servers)
		}
	}
}

// eventually fails t unless cond holds within timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

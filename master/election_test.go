package master

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// tWriter sends a master's log to the test's.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// zkMaster is a master running behind the election until the test ends
// or stop is called.
type zkMaster struct {
	*Master
	stop func()
}

func startZKMaster(t *testing.T, ns *eventstest.NATS, servers []string, root, id string) *zkMaster {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{
		NC:       eventstest.Connect(t, ns),
		ZK:       &ZKConfig{Servers: servers, Path: root, SessionTimeout: time.Second},
		Listener: ln, ID: id, Hostname: id + ".test",
		Log: testLogger(t).With("master", id),
	})
	if err != nil {
		t.Fatal(err)
	}
	return runZKMaster(t, m)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

// runZKMaster runs m until the test ends or stop is called.
func runZKMaster(t *testing.T, m *Master) *zkMaster {
	t.Helper()
	id := m.cfg.ID
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("master %s: %v", id, err)
			}
		})
	}
	t.Cleanup(stop)
	return &zkMaster{Master: m, stop: stop}
}

// leaderIs waits until standby names leader as the leader.
func leaderIs(t *testing.T, standby, leader *zkMaster) {
	t.Helper()
	want := leader.selfInfo()
	eventually(t, 10*time.Second, standby.cfg.ID+" names "+leader.cfg.ID, func() bool {
		got, ok := standby.LeaderInfo()
		return ok && got == want && !standby.Leading()
	})
}

func leads(t *testing.T, m *zkMaster, within time.Duration) {
	t.Helper()
	eventually(t, within, m.cfg.ID+" leads", m.Leading)
}

func (m *zkMaster) epochNow() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.epoch
}

// TestElectionHandover: the first candidate leads, the others follow it,
// and leadership passes down the line as leaders stop, with the state.
func TestElectionHandover(t *testing.T) {
	e := testZK(t)
	ns := eventstest.StartNATS(t)
	root := zkRoot(t)
	m1 := startZKMaster(t, ns, e.Servers, root, "m1")
	leads(t, m1, 20*time.Second)
	m2 := startZKMaster(t, ns, e.Servers, root, "m2")
	leaderIs(t, m2, m1)
	m3 := startZKMaster(t, ns, e.Servers, root, "m3")
	leaderIs(t, m3, m1)
	if got, _ := m1.LeaderInfo(); got != m1.selfInfo() {
		t.Fatalf("leader's LeaderInfo %+v, want itself", got)
	}

	// Mesos-DNS and mesos-go read the lowest json.info_ child.
	conn := zkConnect(t, e.Servers)
	names, _, err := conn.Children(root)
	if err != nil {
		t.Fatal(err)
	}
	cands := candidates(names)
	if len(cands) != 3 {
		t.Fatalf("candidates %v, want 3", names)
	}
	data, _, err := conn.Get(root + "/" + cands[0])
	if err != nil {
		t.Fatal(err)
	}
	var info MasterInfo
	if err := json.Unmarshal(data, &info); err != nil || info != m1.selfInfo() {
		t.Fatalf("lowest candidate holds %s (%v), want m1's info", data, err)
	}

	// Every master lists all three, the leader first (/master/state's
	// "masters").
	for _, m := range []*zkMaster{m1, m2, m3} {
		eventually(t, 5*time.Second, m.cfg.ID+" lists m1 (leader), m2, m3", func() bool {
			ms := m.Masters()
			return len(ms) == 3 && ms[0].ID == "m1" && ms[0].Leader && ms[1].ID == "m2" && !ms[1].Leader && ms[2].ID == "m3"
		})
	}

	app := eventstest.App("/kept", 0)
	if err := m1.commit(events.PutApp(app)); err != nil {
		t.Fatal(err)
	}
	epoch1 := m1.epochNow()

	m1.stop()
	leads(t, m2, 10*time.Second)
	leaderIs(t, m3, m2)
	eventually(t, 5*time.Second, "m3 lists m2 (leader), m3", func() bool {
		ms := m3.Masters()
		return len(ms) == 2 && ms[0].ID == "m2" && ms[0].Leader && ms[1].ID == "m3"
	})
	if m3.Leading() {
		t.Fatal("m3 leads while m2 does")
	}
	if got := m2.epochNow(); got != epoch1+1 {
		t.Fatalf("m2 leads epoch %d, want %d", got, epoch1+1)
	}
	m2.View(func(s *events.State) {
		if _, ok := s.Apps["/kept"]; !ok {
			t.Error("m2 lost the app m1 stored")
		}
	})

	m2.stop()
	leads(t, m3, 10*time.Second)
	if got := m3.epochNow(); got != epoch1+2 {
		t.Fatalf("m3 leads epoch %d, want %d", got, epoch1+2)
	}
}

// TestElectionSessionLoss: a leader whose ZooKeeper server dies stops
// leading at once; a standby on the other servers takes over once the old
// session has expired.
func TestElectionSessionLoss(t *testing.T) {
	e := testZK(t)
	ns := eventstest.StartNATS(t)
	root := zkRoot(t)
	m1 := startZKMaster(t, ns, []string{e.Addr(0)}, root, "m1")
	leads(t, m1, 20*time.Second)
	m2 := startZKMaster(t, ns, []string{e.Addr(1), e.Addr(2)}, root, "m2")
	leaderIs(t, m2, m1)

	start := time.Now()
	stopZKNode(t, e, 0)
	eventually(t, 2*time.Second, "m1 stops leading", func() bool { return !m1.Leading() })
	t.Logf("m1 revoked %s after its server died", time.Since(start))
	if err := m1.commit(events.PutApp(eventstest.App("/late", 0))); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("commit after session loss: %v, want ErrNotLeader", err)
	}
	// The old session expires after ~1s; the ensemble may also have to
	// elect a new ZooKeeper leader if node 0 was it.
	leads(t, m2, 30*time.Second)
	t.Logf("m2 leads %s after m1's server died", time.Since(start))
	if m1.Leading() {
		t.Fatal("m1 leads again without a ZooKeeper server")
	}
}

// TestElectionLeaderSurvivesItsServerLoss: a leader whose ZooKeeper
// server dies stops acting at once, gets its session back from another
// server, and leads again in a new epoch; nobody else led meanwhile.
func TestElectionLeaderSurvivesItsServerLoss(t *testing.T) {
	e := testZK(t)
	ns := eventstest.StartNATS(t)
	root := zkRoot(t)
	m1 := startZKMaster(t, ns, e.Servers, root, "m1")
	leads(t, m1, 20*time.Second)
	m2 := startZKMaster(t, ns, e.Servers, root, "m2")
	leaderIs(t, m2, m1)
	epoch := m1.epochNow()

	m1.zkStore.mu.Lock()
	server := m1.zkStore.conn.Server()
	m1.zkStore.mu.Unlock()
	node := slices.Index(e.Servers, server)
	if node < 0 {
		t.Fatalf("m1 is on %q, not one of %v", server, e.Servers)
	}
	start := time.Now()
	stopZKNode(t, e, node)
	eventually(t, 2*time.Second, "m1 stops leading", func() bool { return !m1.Leading() })
	stopped := time.Since(start)
	eventually(t, 20*time.Second, "m1 leads again in a new epoch", func() bool { return m1.Leading() && m1.epochNow() > epoch })
	t.Logf("m1's server %s died: m1 stopped after %s, led again (epoch %d → %d) after %s", server, stopped, epoch, m1.epochNow(), time.Since(start))
	if m2.Leading() {
		t.Fatal("m2 leads too")
	}
	leaderIs(t, m2, m1)
	if err := m1.commit(events.PutApp(eventstest.App("/after", 1))); err != nil {
		t.Fatalf("commit after the session came back: %v", err)
	}
}

// TestElectionFencedLeaderRevokes: a leader whose store a newer leader
// took over stops at its next write and comes back as a new candidate.
func TestElectionFencedLeaderRevokes(t *testing.T) {
	e := testZK(t)
	ns := eventstest.StartNATS(t)
	root := zkRoot(t)
	m1 := startZKMaster(t, ns, e.Servers, root, "m1")
	leads(t, m1, 20*time.Second)
	epoch1 := m1.epochNow()

	usurper := newTestZKStore(t, root, "usurper")
	load(t, usurper)
	err := m1.commit(events.PutApp(eventstest.App("/stale", 0)))
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("commit after takeover: %v, want ErrFenced", err)
	}
	eventually(t, 2*time.Second, "m1 stops leading", func() bool { return !m1.Leading() })

	// Alone in the election, m1 leads again in a new epoch, without the
	// fenced write.
	eventually(t, 20*time.Second, "m1 leads again", func() bool {
		return m1.Leading() && m1.epochNow() > epoch1
	})
	m1.View(func(s *events.State) {
		if _, ok := s.Apps["/stale"]; ok {
			t.Error("the fenced write landed")
		}
	})
}

// TestElectionDropsEarlierSelf: a node left by this master's earlier
// session (closed while ZooKeeper was unreachable, so not yet expired)
// does not make the master wait for its expiry, nor follow itself.
func TestElectionDropsEarlierSelf(t *testing.T) {
	e := testZK(t)
	ns := eventstest.StartNATS(t)
	root := zkRoot(t)
	old := zkConnect(t, e.Servers)
	if err := ensurePath(old, root, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(MasterInfo{ID: "m1", Hostname: "m1.test"})
	orphan, err := old.Create(root+"/"+candidatePrefix, data, zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
	if err != nil {
		t.Fatal(err)
	}
	m1 := startZKMaster(t, ns, e.Servers, root, "m1")
	leads(t, m1, 10*time.Second)
	if ok, _, err := old.Exists(orphan); err != nil || ok {
		t.Fatalf("earlier candidate %s still there (%v)", orphan, err)
	}
}

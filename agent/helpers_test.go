package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/natsauth"
)

// testEnv is a real NATS server on loopback, authentication on, with a
// fake master on it.
type testEnv struct {
	t      *testing.T
	srv    *eventstest.NATS
	subj   events.Subjects
	master *fakeMaster
	nc     *nats.Conn // the test's own connection (plays the leader's requests)
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	env := &testEnv{t: t, srv: eventstest.StartNATS(t), subj: events.Subjects{Prefix: "test"}}
	env.nc = env.connectMaster()
	env.master = startFakeMaster(t, env.connectMaster(), env.subj)
	return env
}

// testNode is the agents' hostname: the name of their credential.
const testNode = "node1"

// connect is a connection with the agent's credential.
func (e *testEnv) connect() *nats.Conn {
	e.t.Helper()
	return e.srv.ConnectIn(e.t, e.subj, natsauth.RoleAgent, testNode, nats.MaxReconnects(-1))
}

// connectMaster is a connection with a master's credential.
func (e *testEnv) connectMaster() *nats.Conn {
	e.t.Helper()
	return e.srv.ConnectIn(e.t, e.subj, natsauth.RoleMaster, "test-master", nats.MaxReconnects(-1))
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// config is an agent config for this env with a fresh work dir.
func (e *testEnv) config() Config {
	return Config{
		NC:                 e.connect(),
		Subjects:           e.subj,
		Hostname:           testNode,
		AdvertiseIP:        "127.0.0.2",
		Resources:          events.Resources{Cpus: 2, Mem: 1024, Disk: 1024},
		Attributes:         map[string]string{"region": "oslo"},
		WorkDir:            passableTempDir(e.t),
		HeartbeatInterval:  50 * time.Millisecond,
		StatisticsInterval: 200 * time.Millisecond,
		KillTasksOnStop:    true,
		Log:                testLogger(e.t).With("agent", "a"),
	}
}

// runningAgent is an Agent whose Run goes on in the background.
type runningAgent struct {
	*Agent
	cancel context.CancelFunc
	done   chan error
}

// start runs a; the returned agent is stopped at cleanup if the test did
// not stop it.
func (e *testEnv) start(a *Agent) *runningAgent {
	ctx, cancel := context.WithCancel(context.Background())
	ra := &runningAgent{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { ra.done <- a.Run(ctx) }()
	e.t.Cleanup(func() { ra.stop(e.t) })
	return ra
}

func (e *testEnv) newAgent(cfg Config) *Agent {
	e.t.Helper()
	a, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	// The agent's parent cgroup goes once its tasks' have.
	e.t.Cleanup(func() { removeParentCgroup(a) })
	return a
}

// stop cancels Run and waits for it to return.
func (ra *runningAgent) stop(t *testing.T) {
	t.Helper()
	ra.cancel()
	select {
	case err, ok := <-ra.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(ra.done)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// registered waits until the agent has an id the master gave.
func (e *testEnv) registered(a *runningAgent) string {
	e.t.Helper()
	waitFor(e.t, 10*time.Second, "agent registered", func() bool {
		return a.ID() != "" && e.master.knows(a.ID())
	})
	return a.ID()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *testEnv) request(subject string, v any) events.Ack {
	e.t.Helper()
	data, _ := json.Marshal(v)
	msg, err := e.nc.Request(subject, data, 10*time.Second)
	if err != nil {
		e.t.Fatalf("request %s: %v", subject, err)
	}
	var ack events.Ack
	if err := json.Unmarshal(msg.Data, &ack); err != nil {
		e.t.Fatalf("decode ack: %v", err)
	}
	return ack
}

// launch sends req to the agent of testNode (agentID is for the reader:
// launches go to the node, whatever its current id).
func (e *testEnv) launch(_ string, req events.LaunchRequest) events.Ack {
	e.t.Helper()
	return e.request(e.subj.Launch(testNode), req)
}

func (e *testEnv) kill(_ string, req events.KillRequest) events.Ack {
	e.t.Helper()
	return e.request(e.subj.Kill(testNode), req)
}

// shellTask is a launch request running cmd under /bin/sh -c.
func shellTask(id, cmd string) events.LaunchRequest {
	return events.LaunchRequest{
		Task: events.Task{ID: id, AppID: "/test"},
		Cmd:  cmd,
		Env:  map[string]string{"MESOS_TASK_ID": id, "MARATHON_APP_ID": "/test"},
	}
}

// fakeMaster answers register, heartbeat and status requests like the
// leader would, and records them.
type fakeMaster struct {
	mu         sync.Mutex
	ids        int
	known      map[string]bool
	registers  []events.RegisterRequest
	heartbeats []events.Heartbeat
	statuses   []events.StatusUpdate // acked ones, in arrival order
	dropStatus int                   // leave this many status requests unanswered
	dropped    int
	// statusRequests are the status requests that came, answered or not.
	statusRequests []statusRequest
	// predatesBatches answers status requests as a master from before
	// status batches: a batch records nothing and gets a plain Ack.
	predatesBatches bool
	// batchAcks, when set, has a batch answered with acks for its first
	// batchAcks updates only (the rest not recorded), as a master that
	// could not stage the one after them answers.
	batchAcks  int
	reregister int  // answer this many heartbeats with Reregister
	newIDs     bool // ignore the agent's id and hand out a new one
}

func startFakeMaster(t *testing.T, nc *nats.Conn, subj events.Subjects) *fakeMaster {
	m := &fakeMaster{known: map[string]bool{}}
	reply := func(msg *nats.Msg, v any) {
		data, _ := json.Marshal(v)
		_ = msg.Respond(data)
	}
	subs := []struct {
		subject string
		handle  nats.MsgHandler
	}{
		{subj.FromAgents(events.VerbRegister), func(msg *nats.Msg) {
			var req events.RegisterRequest
			if err := json.Unmarshal(msg.Data, &req); err != nil {
				reply(msg, events.RegisterReply{Error: err.Error()})
				return
			}
			m.mu.Lock()
			m.registers = append(m.registers, req)
			id := req.AgentID
			if id == "" || m.newIDs {
				m.ids++
				id = "agent-" + strconv.Itoa(m.ids)
			}
			m.known[id] = true
			m.mu.Unlock()
			reply(msg, events.RegisterReply{AgentID: id})
		}},
		{subj.FromAgents(events.VerbHeartbeat), func(msg *nats.Msg) {
			var hb events.Heartbeat
			_ = json.Unmarshal(msg.Data, &hb)
			m.mu.Lock()
			m.heartbeats = append(m.heartbeats, hb)
			rereg := m.reregister > 0
			if rereg {
				m.reregister--
			}
			m.mu.Unlock()
			reply(msg, events.HeartbeatReply{Reregister: rereg})
		}},
		{subj.FromAgents(events.VerbStatus), func(msg *nats.Msg) {
			ups, batch, err := events.DecodeStatuses(msg.Data)
			if err != nil {
				reply(msg, events.Ack{Error: err.Error()})
				return
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			m.statusRequests = append(m.statusRequests, statusRequest{batch: batch, updates: len(ups), answered: m.dropStatus == 0})
			if m.dropStatus > 0 {
				m.dropStatus--
				m.dropped++
				return
			}
			if m.predatesBatches && batch {
				reply(msg, events.Ack{}) // it found no task id: nothing to record
				return
			}
			if batch && m.batchAcks > 0 && len(ups) > m.batchAcks {
				ups = ups[:m.batchAcks]
			}
			m.statuses = append(m.statuses, ups...)
			if !batch {
				reply(msg, events.Ack{})
				return
			}
			acks := make([]events.TaskAck, len(ups))
			for i, u := range ups {
				acks[i] = events.TaskAck{TaskID: u.TaskID}
			}
			reply(msg, events.AckBatch{Acks: acks})
		}},
	}
	for _, s := range subs {
		if _, err := nc.Subscribe(s.subject, s.handle); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return m
}

// statusRequest is one status request the fake master took.
type statusRequest struct {
	batch    bool // a StatusBatch, not a lone update
	updates  int
	answered bool
}

// statusRequestsSeen copies the status requests taken so far.
func (m *fakeMaster) statusRequestsSeen() []statusRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.statusRequests)
}

func (m *fakeMaster) knows(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.known[id]
}

// states lists the acked states of a task, in order.
func (m *fakeMaster) states(taskID string) []events.TaskState {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []events.TaskState
	for _, s := range m.statuses {
		if s.TaskID == taskID {
			out = append(out, s.State)
		}
	}
	return out
}

// waitStatus waits for an acked status of the task in the given state.
func (m *fakeMaster) waitStatus(t *testing.T, taskID string, state events.TaskState) events.StatusUpdate {
	t.Helper()
	var found events.StatusUpdate
	waitFor(t, 15*time.Second, taskID+" "+string(state), func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, s := range m.statuses {
			if s.TaskID == taskID && s.State == state {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

func (m *fakeMaster) lastRegister() events.RegisterRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.registers) == 0 {
		return events.RegisterRequest{}
	}
	return m.registers[len(m.registers)-1]
}

func (m *fakeMaster) registerCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.registers)
}

// sandboxFile reads a file from a task's sandbox.
func sandboxFile(cfg Config, taskID, name string) string {
	data, _ := os.ReadFile(filepath.Join(cfg.WorkDir, "tasks", taskID, name))
	return string(data)
}

// checkpointPath is where the agent keeps a task's checkpoint: in its own
// state folder, outside the sandbox.
func checkpointPath(cfg Config, taskID string) string {
	return filepath.Join(cfg.WorkDir, "state", "tasks", taskID, checkpointFile)
}

func checkpointOf(t *testing.T, cfg Config, taskID string) checkpoint {
	t.Helper()
	cp, err := readCheckpoint(filepath.Dir(checkpointPath(cfg, taskID)))
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func checkpointExists(cfg Config, taskID string) bool {
	_, err := os.Stat(checkpointPath(cfg, taskID))
	return !errors.Is(err, os.ErrNotExist)
}

// passableTempDir is t.TempDir() with search permission for everyone on it
// and on the folder Go made above it (0700): tasks run as nobody and must
// reach their sandboxes, and the scripts of binDir, inside.
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

// sessionMembers lists the live (non-zombie) processes of session sid.
func sessionMembers(sid int) []int {
	dirs, _ := os.ReadDir("/proc")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(data), ')')
		f := strings.Fields(string(data[i+1:]))
		if len(f) > 3 && f[3] == strconv.Itoa(sid) && f[0] != "Z" && f[0] != "X" {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// killSession cleans up after a test that leaves a task running on
// purpose.
func killSession(t *testing.T, sid int) {
	t.Cleanup(func() {
		if sid > 0 && len(sessionMembers(sid)) > 0 {
			_ = syscall.Kill(-sid, syscall.SIGKILL)
		}
		// Reap it if it is the test process's child.
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(sid, &ws, 0, nil)
	})
}

func sandboxExists(cfg Config, taskID string) bool {
	_, err := os.Stat(filepath.Join(cfg.WorkDir, "tasks", taskID, "stdout"))
	return err == nil
}

// statusesOf lists the acked updates of a task, in order.
func (m *fakeMaster) statusesOf(taskID string) []events.StatusUpdate {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []events.StatusUpdate
	for _, s := range m.statuses {
		if s.TaskID == taskID {
			out = append(out, s)
		}
	}
	return out
}

// removeParentCgroup removes an agent's parent cgroup and the task
// cgroups a test left in it (their processes killed by then): tests make
// one per work dir.
func removeParentCgroup(a *Agent) {
	if a.cgroups == nil {
		return
	}
	if names, err := a.cgroups.Children(); err == nil {
		for _, name := range names {
			a.destroyCgroup(name, a.cgroups.Child(name))
		}
	}
	_ = a.cgroups.RemoveIfEmpty()
}

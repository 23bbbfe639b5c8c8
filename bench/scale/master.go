package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/freeport"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/natsenv"
)

// master is the `atoll master` process under test. restart starts the same
// command again (same store, same address, same credentials).
type master struct {
	bin     string
	args    []string
	api     *api
	logPath string

	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{}
	waitErr error
}

// masterConfig is how the bench runs the master.
type masterConfig struct {
	atoll        string
	dir          string
	zkURL        string // "": local store in dir/data
	maxInstances int
	pprof        bool // --pprof
}

func startMaster(env *natsenv.Env, mc masterConfig) (*master, error) {
	natsArgs, err := env.Args(natsauth.RoleMaster, "bench-master")
	if err != nil {
		return nil, err
	}
	port, err := freeport.Reserve("127.0.0.1", false)
	if err != nil {
		return nil, err
	}
	pass, err := randomSecret()
	if err != nil {
		return nil, err
	}
	credsFile := filepath.Join(mc.dir, "http-credentials")
	if err := os.WriteFile(credsFile, []byte("bench:"+pass+"\n"), 0o600); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := append(append([]string{"master"}, natsArgs...),
		"--http", addr, "--data-dir", filepath.Join(mc.dir, "data"), "--http-credentials-file", credsFile,
		"--max-instances-per-app", fmt.Sprint(mc.maxInstances), "--hostname", "bench-master")
	if mc.pprof {
		args = append(args, "--pprof")
	}
	if mc.zkURL != "" {
		// A single master: the ZooKeeper session of a killed one must
		// expire before the next leads; zktest's ticks allow 4 s at most.
		args = append(args, "--zk", mc.zkURL, "--zk-session-timeout", "4s")
	}
	m := &master{bin: mc.atoll, args: args, logPath: filepath.Join(mc.dir, "master.log"),
		api: &api{base: "http://" + addr, user: "bench", pass: pass, client: &http.Client{Timeout: 5 * time.Minute}}}
	return m, m.start()
}

func (m *master) start() error {
	logFile, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(m.bin, m.args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The bench dying must not leave a master behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start atoll master: %w", err)
	}
	m.cmd, m.logFile, m.done, m.waitErr = cmd, logFile, make(chan struct{}), nil
	done := m.done
	go func() { m.waitErr = cmd.Wait(); close(done) }()
	return nil
}

// stop ends the master with sig (SIGKILL at once, else after 20 s).
func (m *master) stop(sig syscall.Signal) {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(sig)
	select {
	case <-m.done:
	case <-time.After(20 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	m.logFile.Close()
	m.cmd = nil
}

func (m *master) pid() int { return m.cmd.Process.Pid }

// exited is an error if the master is no longer running.
func (m *master) exited() error {
	select {
	case <-m.done:
		return fmt.Errorf("atoll master exited: %v (log: %s)", m.waitErr, lastLines(m.logPath, 20))
	default:
		return nil
	}
}

// waitLeading waits until the master says it is elected.
func (m *master) waitLeading(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if err := m.exited(); err != nil {
			return err
		}
		if m.elected(ctx) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("master not elected after %s (log: %s)", limit, lastLines(m.logPath, 10))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// elected reports whether GET /v2/info says this master leads. (A new
// master answers /v2/leader with the old leader's address until that
// one's ZooKeeper session expires.)
func (m *master) elected(ctx context.Context) bool {
	_, _, data, err := m.api.call(ctx, http.MethodGet, "/v2/info", nil)
	if err != nil {
		return false
	}
	var info struct {
		Elected bool `json:"elected"`
	}
	return json.Unmarshal(data, &info) == nil && info.Elected
}

// waitAgents waits until n agents are active.
func (m *master) waitAgents(ctx context.Context, n int, limit time.Duration, fleetErr func() error) error {
	deadline := time.Now().Add(limit)
	for {
		if err := fleetErr(); err != nil {
			return err
		}
		if err := m.exited(); err != nil {
			return err
		}
		mt, err := m.api.metrics(ctx)
		if err == nil && int(mt.agents[string(events.AgentActive)]) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %v of %d agents active after %s (err %v)", mt.agents[string(events.AgentActive)], n, limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// randomSecret is a password for the master's HTTP API.
func randomSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

var errBatchTimeout = errors.New("batch not all running in time")

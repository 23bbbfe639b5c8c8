package agent

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// After Run returns, no goroutine of the agent is left, even with a kill
// waiting for its grace period and tasks left running.
func TestRunLeavesNoGoroutines(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	cfg.KillTasksOnStop = false
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	req := shellTask("linger.1", `trap '' TERM; echo ok > ready; while :; do sleep 0.05; done`)
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	waitReady(t, cfg, "linger.1")
	killSession(t, checkpointOf(t, cfg, "linger.1").Pid)
	if ack := env.kill(id, events.KillRequest{TaskID: "linger.1", KillGracePeriod: time.Hour}); ack.Error != "" {
		t.Fatalf("kill: %s", ack.Error)
	}
	env.master.waitStatus(t, "linger.1", events.TaskKilling)
	a.stop(t)

	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(stacks, "\n\n") {
		// The harness's own goroutine has handed over Run's result and
		// may still be on its way out (runtime.goexit1): not the agent's.
		if strings.Contains(g, "atoll/agent.(*") && !strings.Contains(g, "runtime.goexit1()") {
			t.Errorf("goroutine left after Run returned:\n%s", g)
		}
	}
	if _, err := env.nc.Request(env.subj.Launch(testNode), []byte(`{}`), 2*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("launch after stop: err = %v, want no responders", err)
	}
}

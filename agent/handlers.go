package agent

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// begin admits a launch or kill handler unless the agent is stopping.
func (a *Agent) begin() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing {
		return false
	}
	a.inflight.Add(1)
	return true
}

var errStopping = &events.CodedError{Code: events.AckStopping, Err: errors.New("agent is stopping")}

// handleLaunch answers a LaunchRequest with an Ack once the task runs.
func (a *Agent) handleLaunch(m *nats.Msg) {
	if !a.begin() {
		respond(m, errStopping)
		return
	}
	defer a.inflight.Done()
	var req events.LaunchRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		respond(m, &events.CodedError{Code: events.AckBadRequest, Err: fmt.Errorf("bad launch request: %w", err)})
		return
	}
	respond(m, a.launch(req))
}

// handleKill answers a KillRequest with an Ack at once; the kill goes on
// in the background.
func (a *Agent) handleKill(m *nats.Msg) {
	if !a.begin() {
		respond(m, errStopping)
		return
	}
	defer a.inflight.Done()
	var req events.KillRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		respond(m, &events.CodedError{Code: events.AckBadRequest, Err: fmt.Errorf("bad kill request: %w", err)})
		return
	}
	respond(m, a.kill(req))
}

func respond(m *nats.Msg, err error) {
	data, _ := json.Marshal(events.AckFor(err))
	_ = m.Respond(data)
}

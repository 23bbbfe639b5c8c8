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

// handleLaunch answers a LaunchBatch with an AckBatch once every task in
// it runs or failed to start, one at a time in order, each as a lone
// launch; and a lone LaunchRequest (from a leader that predates batches)
// with an Ack once its task runs.
func (a *Agent) handleLaunch(m *nats.Msg) {
	reqs, batch, err := events.DecodeLaunches(m.Data)
	if err != nil {
		respond(m, &events.CodedError{Code: events.AckBadRequest, Err: fmt.Errorf("bad launch request: %w", err)})
		return
	}
	acks := make([]events.TaskAck, len(reqs))
	for i, req := range reqs {
		err := a.launchOne(req)
		acks[i] = events.TaskAck{TaskID: req.Task.ID, Ack: events.AckFor(err)}
		if err == nil {
			acks[i].Launch = a.launchMarkOf(req.Task.ID)
		}
	}
	answer(m, batch, acks)
}

// launchMarkOf is where this process took task id (nil if it no longer
// holds it: the master then goes by when the ack came).
func (a *Agent) launchMarkOf(id string) *events.LaunchMark {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.tasks[id]; ok && t.mark.Run != "" {
		m := t.mark
		return &m
	}
	return nil
}

// launchOne is one launch, unless the agent is stopping.
func (a *Agent) launchOne(req events.LaunchRequest) error {
	if !a.begin() {
		return errStopping
	}
	defer a.inflight.Done()
	return a.launch(req)
}

// handleKill answers a KillBatch with an AckBatch, and a lone KillRequest
// with an Ack, at once; the kills go on in the background.
func (a *Agent) handleKill(m *nats.Msg) {
	reqs, batch, err := events.DecodeKills(m.Data)
	if err != nil {
		respond(m, &events.CodedError{Code: events.AckBadRequest, Err: fmt.Errorf("bad kill request: %w", err)})
		return
	}
	acks := make([]events.TaskAck, len(reqs))
	for i, req := range reqs {
		acks[i] = events.TaskAck{TaskID: req.TaskID, Ack: events.AckFor(a.killOne(req))}
	}
	answer(m, batch, acks)
}

// killOne is one kill, unless the agent is stopping.
func (a *Agent) killOne(req events.KillRequest) error {
	if !a.begin() {
		return errStopping
	}
	defer a.inflight.Done()
	return a.kill(req)
}

// answer replies to a batch with its acks, and to a lone request with its
// one ack.
func answer(m *nats.Msg, batch bool, acks []events.TaskAck) {
	if !batch {
		data, _ := json.Marshal(acks[0].Ack)
		_ = m.Respond(data)
		return
	}
	data, _ := json.Marshal(events.AckBatch{Acks: acks})
	_ = m.Respond(data)
}

func respond(m *nats.Msg, err error) {
	data, _ := json.Marshal(events.AckFor(err))
	_ = m.Respond(data)
}

package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// session registers, then heartbeats until the master asks for a new
// registration, and so on until ctx ends.
func (a *Agent) session(ctx context.Context) {
	for {
		if !a.register(ctx) {
			return
		}
		a.heartbeat(ctx)
		if ctx.Err() != nil {
			return
		}
		a.setUnregistered()
	}
}

// register retries with backoff until the master gives an id; it returns
// false if ctx ended first.
func (a *Agent) register(ctx context.Context) bool {
	backoff := 100 * time.Millisecond
	for {
		id, err := a.registerOnce(ctx)
		if err == nil {
			a.registered(id)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if errors.Is(err, errRefused) {
			// Not a lost message: the master said no (a hostname that is
			// not this agent's credential, say). Say it where it shows.
			a.log.Warn("master refused registration, retrying", "err", err, "retry", backoff)
		} else {
			a.log.Debug("registration failed, retrying", "err", err, "retry", backoff)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (a *Agent) registerOnce(ctx context.Context) (string, error) {
	tasks, mark := a.reportsWith(false)
	req := events.RegisterRequest{
		AgentID:    a.ID(),
		Hostname:   a.cfg.Hostname,
		IP:         a.cfg.AdvertiseIP,
		Resources:  a.cfg.Resources,
		Attributes: a.cfg.Attributes,
		Containers: a.cfg.Containers.Policy,
		Tasks:      tasks,
		Launches:   mark,
	}
	data, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	rctx, cancel := context.WithTimeout(ctx, a.registerTimeout)
	defer cancel()
	msg, err := a.cfg.NC.RequestWithContext(rctx, a.cfg.Subjects.Register(a.cfg.Hostname), data)
	if err != nil {
		return "", err
	}
	var reply events.RegisterReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return "", err
	}
	if reply.Error != "" {
		return "", fmt.Errorf("%w: %s", errRefused, reply.Error)
	}
	if reply.AgentID == "" {
		return "", errors.New("registration reply without agent id")
	}
	return reply.AgentID, nil
}

// errRefused is a registration the master answered with a refusal.
var errRefused = errors.New("master refused registration")

// registered records a successful registration under id: persisted and
// served before the agent counts as registered.
func (a *Agent) registered(id string) {
	old := a.ID()
	if id != old {
		if err := writeAgentID(a.cfg.WorkDir, id); err != nil {
			a.log.Error("cannot persist agent id", "id", id, "err", err)
		}
	}
	a.serveNodeSubjects()

	a.mu.Lock()
	a.id = id
	select {
	case <-a.regReady:
	default:
		close(a.regReady)
	}
	a.mu.Unlock()
	a.log.Info("agent registered", "id", id, "previous", old, "hostname", a.cfg.Hostname, "ip", a.cfg.AdvertiseIP)
}

// setUnregistered holds status updates back until the next registration.
func (a *Agent) setUnregistered() {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.regReady:
		a.regReady = make(chan struct{})
	default:
	}
}

// registeredCh is closed while the agent is registered.
func (a *Agent) registeredCh() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.regReady
}

// serveNodeSubjects serves launch, kill and files for this node once the
// agent has an id, and keeps serving them: the subjects carry the node's
// name, not the id (the NATS server lets only this node's credential hear
// them), so a new id keeps them.
func (a *Agent) serveNodeSubjects() {
	a.subMu.Lock()
	defer a.subMu.Unlock()
	if len(a.subs) > 0 {
		// Already served: the subjects are the node's, whatever its id.
		// Subscribing anew would leave a moment with none, in which
		// the master's launch or kill finds no responder.
		return
	}
	a.mu.Lock()
	closing := a.closing
	a.mu.Unlock()
	if closing {
		return
	}
	a.unsubscribeLocked()
	node := a.cfg.Hostname
	launch, err := a.cfg.NC.Subscribe(a.cfg.Subjects.Launch(node), a.handleLaunch)
	if err != nil {
		a.log.Error("cannot subscribe", "subject", a.cfg.Subjects.Launch(node), "err", err)
		return
	}
	kill, err := a.cfg.NC.Subscribe(a.cfg.Subjects.Kill(node), a.handleKill)
	if err != nil {
		_ = launch.Unsubscribe()
		a.log.Error("cannot subscribe", "subject", a.cfg.Subjects.Kill(node), "err", err)
		return
	}
	files, err := a.cfg.NC.Subscribe(a.cfg.Subjects.Files(node), a.handleFiles)
	if err != nil {
		_ = launch.Unsubscribe()
		_ = kill.Unsubscribe()
		a.log.Error("cannot subscribe", "subject", a.cfg.Subjects.Files(node), "err", err)
		return
	}
	a.subs = []*nats.Subscription{launch, kill, files}
	if err := a.cfg.NC.FlushTimeout(2 * time.Second); err != nil {
		a.log.Warn("flush after subscribe", "err", err)
	}
}

// unsubscribe stops serving launch and kill. It waits until the server
// has the unsubscriptions: until then, requests would still reach this
// connection and be dropped there, unanswered, rather than fail at once
// with no responders.
func (a *Agent) unsubscribe() {
	a.subMu.Lock()
	defer a.subMu.Unlock()
	a.unsubscribeLocked()
	if err := a.cfg.NC.FlushTimeout(2 * time.Second); err != nil {
		a.log.Warn("flush after unsubscribe", "err", err)
	}
}

func (a *Agent) unsubscribeLocked() {
	for _, s := range a.subs {
		_ = s.Unsubscribe()
	}
	a.subs = nil
}

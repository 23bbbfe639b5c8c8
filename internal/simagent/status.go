package simagent

import (
	"context"
	"time"

	"github.com/atollhq/atoll/events"
)

// statusLoop sends queued updates in order, each retried with backoff
// until acked, while the agent is registered (agent/status.go).
func (a *Agent) statusLoop(ctx context.Context) {
	for {
		a.mu.Lock()
		var u events.StatusUpdate
		have := len(a.queue) > 0
		if have {
			u = a.queue[0]
		}
		a.mu.Unlock()
		if !have {
			select {
			case <-ctx.Done():
				return
			case <-a.wake:
				continue
			}
		}
		if wait := a.cfg.StatusDelay - time.Since(u.Time); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		if !a.deliver(ctx, u) {
			return
		}
		a.mu.Lock()
		a.queue[0] = events.StatusUpdate{}
		a.queue = a.queue[1:]
		if t, ok := a.tasks[u.TaskID]; ok && u.State == events.TaskKilled && t.state == events.TaskKilled {
			delete(a.tasks, u.TaskID) // its final status is acked
		}
		a.mu.Unlock()
	}
}

// deliver sends one update until acked; false if ctx ended first.
func (a *Agent) deliver(ctx context.Context, u events.StatusUpdate) bool {
	backoff := 100 * time.Millisecond
	for {
		a.mu.Lock()
		reg := a.reg
		a.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-reg:
		}
		u.AgentID = a.ID()
		var ack events.Ack
		a.c.StatusSent.Add(1)
		err := a.request(ctx, a.cfg.Subjects.Status(a.cfg.Node), u, &ack, 2*time.Second)
		if err == nil {
			if ack.Error != "" {
				a.c.StatusRefused.Add(1) // an Ack carrying an error is still an ack
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		a.c.StatusRetries.Add(1)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// Pending counts status updates not yet acked.
func (a *Agent) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queue)
}

// statusQueueBound is the real agent's (agent/status.go): past it, only
// each task's newest update is kept (the head stays: it may be on the
// wire). The simulated agents send no health, so nothing else must stay.
const statusQueueBound = 1024

// compactLocked drops updates a later one of the same task supersedes,
// once the queue is past the bound. a.mu held.
func (a *Agent) compactLocked() {
	if len(a.queue) <= max(a.compactAt, statusQueueBound) {
		return
	}
	newest := make(map[string]int, len(a.queue))
	for i, u := range a.queue {
		newest[u.TaskID] = i
	}
	kept := a.queue[:0]
	for i, u := range a.queue {
		if i == 0 || newest[u.TaskID] == i {
			kept = append(kept, u)
		}
	}
	clear(a.queue[len(kept):])
	a.queue = kept
	a.compactAt = 2 * len(kept)
}

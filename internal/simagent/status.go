package simagent

import (
	"context"
	"slices"
	"time"

	"github.com/atollhq/atoll/events"
)

// maxStatusesPerRequest is the real agent's (agent/status.go): the most
// updates one StatusBatch carries. A simulated agent's updates are small
// (no messages, no health), so 256 of them fit any server's message size.
const maxStatusesPerRequest = 256

// statusLoop sends queued updates in order while the agent is registered,
// as the real agent does (agent/status.go): all that are due in one
// request (a StatusBatch, or a lone update when one is due); those the
// master did not ack go again, with whatever was queued since, after a
// backoff (100 ms to 2 s) if it acked none.
func (a *Agent) statusLoop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		a.mu.Lock()
		have := len(a.queue) > 0
		var first time.Time
		if have {
			first = a.queue[0].Time
		}
		reg := a.reg
		a.mu.Unlock()
		if !have {
			select {
			case <-ctx.Done():
				return
			case <-a.wake:
				continue
			}
		}
		if wait := a.cfg.StatusDelay - time.Since(first); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-reg:
		}
		n, _ := a.sendStatuses(ctx, a.takeStatuses())
		a.ackedStatuses(n)
		if n > 0 {
			backoff = 100 * time.Millisecond
			continue
		}
		if ctx.Err() != nil {
			return
		}
		a.c.StatusRetries.Add(1) // not acked in 2 s (or refused whole): sent again
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// takeStatuses marks the updates due (held StatusDelay), up to
// maxStatusesPerRequest from the head, as on the wire and returns them
// with the agent's id.
func (a *Agent) takeStatuses() []events.StatusUpdate {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for n < min(len(a.queue), maxStatusesPerRequest) && time.Since(a.queue[n].Time) >= a.cfg.StatusDelay {
		n++
	}
	n = max(n, 1) // the head is due: statusLoop waited for it
	a.sending = n
	ups := slices.Clone(a.queue[:n])
	for i := range ups {
		ups[i].AgentID = a.id
	}
	return ups
}

// ackedStatuses drops the first n queued updates, which the master acked;
// a killed task goes once its final status is acked.
func (a *Agent) ackedStatuses(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, u := range a.queue[:n] {
		if t, ok := a.tasks[u.TaskID]; ok && u.State == events.TaskKilled && t.state == events.TaskKilled {
			delete(a.tasks, u.TaskID)
		}
	}
	a.c.StatusAcked.Add(int64(n))
	clear(a.queue[:n])
	a.queue = a.queue[n:]
	a.sending = 0
}

// sendStatuses makes one attempt at ups and returns how many, from the
// first, the master acked: a lone update when there is one, a batch
// otherwise, and the updates one at a time to a master that predates
// batches (it answers a batch with a plain Ack).
func (a *Agent) sendStatuses(ctx context.Context, ups []events.StatusUpdate) (int, error) {
	subject := a.cfg.Subjects.Status(a.cfg.Node)
	if len(ups) > 1 {
		var reply events.AckBatch
		a.c.StatusSent.Add(1)
		start := time.Now()
		if err := a.request(ctx, subject, events.StatusBatch{Updates: ups}, &reply, 2*time.Second); err != nil {
			return 0, err
		}
		if reply.Acks != nil {
			a.c.observeStatusRTT(time.Since(start))
			n := min(len(reply.Acks), len(ups))
			for _, ack := range reply.Acks[:n] {
				if ack.Error != "" {
					a.c.StatusRefused.Add(1) // an Ack carrying an error is still an ack
				}
			}
			return n, nil
		}
	}
	for i, u := range ups {
		var ack events.Ack
		a.c.StatusSent.Add(1)
		start := time.Now()
		if err := a.request(ctx, subject, u, &ack, 2*time.Second); err != nil {
			return i, err
		}
		a.c.observeStatusRTT(time.Since(start))
		if ack.Error != "" {
			a.c.StatusRefused.Add(1)
		}
	}
	return len(ups), nil
}

// Pending counts status updates not yet acked.
func (a *Agent) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queue)
}

// statusQueueBound is the real agent's (agent/status.go): past it, only
// each task's newest update is kept (what is on the wire stays, and the
// head). The simulated agents send no health, so nothing else must stay.
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
		if i < max(a.sending, 1) || newest[u.TaskID] == i {
			kept = append(kept, u)
		}
	}
	clear(a.queue[len(kept):])
	a.queue = kept
	a.compactAt = 2 * len(kept)
}

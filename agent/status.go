package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/atollhq/atoll/events"
)

// statusItem is one queued status update; onAck runs once the master acked
// it.
type statusItem struct {
	upd   events.StatusUpdate
	onAck func()
	// replaceable marks a health update that a newer one of the same
	// task may replace while it waits (pushHealth).
	replaceable bool
}

// mustReach reports whether a later health update of its task may not
// supersede it: the one that hit the failure limit, on which the master
// replaces the task.
func (it statusItem) mustReach() bool {
	return !it.replaceable && len(it.upd.HealthCheckResults) > 0
}

// supersedes reports whether it, a later update of the same task, makes
// earlier unsent: the master needs only a task's newest state.
func (it statusItem) supersedes(earlier statusItem) bool {
	return !(earlier.mustReach() && it.replaceable)
}

// statusQueueBound is how many updates the queue holds before it drops
// those a later update of the same task supersedes (compact). While the
// master is out of reach, tasks that start, fail health checks or end
// would otherwise queue without end.
const statusQueueBound = 1024

// statusQueue sends status updates in order, one at a time, each retried
// until acked. Pushing never blocks. Past statusQueueBound the queue keeps
// only what the master must hear: each task's newest update, and the
// update that hit a health check's limit until a state change follows it;
// so it holds at most about two updates per task.
type statusQueue struct {
	mu      sync.Mutex
	items   []statusItem
	wake    chan struct{}   // capacity 1: "something was pushed"
	waiters []chan struct{} // closed when the queue is empty
	// compactAt is the length that makes the next compaction: at least
	// statusQueueBound, and twice what the last one kept, so a queue of
	// many tasks' newest states is not compacted on every push.
	compactAt int
	// superseded counts the updates compaction dropped.
	superseded int
	log        *slog.Logger // nil: compactions go unlogged (tests)
}

func newStatusQueue() *statusQueue {
	return &statusQueue{wake: make(chan struct{}, 1), compactAt: statusQueueBound}
}

func (q *statusQueue) push(it statusItem) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.compactIfLongLocked()
	q.mu.Unlock()
	q.signal()
}

// compactIfLongLocked drops the updates that a later one of the same task
// supersedes, once the queue is long; the dropped one's onAck runs when
// its successor's does. The head is kept: it may be on the wire. q.mu
// held.
func (q *statusQueue) compactIfLongLocked() {
	if len(q.items) <= q.compactAt {
		return
	}
	before := len(q.items)
	// Walk from the newest: latest is each task's next kept update.
	latest := map[string]int{}
	keep := make([]bool, len(q.items))
	for i := len(q.items) - 1; i >= 0; i-- {
		it := q.items[i]
		j, seen := latest[it.upd.TaskID]
		if i == 0 || !seen || !q.items[j].supersedes(it) {
			keep[i], latest[it.upd.TaskID] = true, i
			continue
		}
		if it.onAck != nil {
			later, first := q.items[j].onAck, it.onAck
			q.items[j].onAck = func() {
				first()
				if later != nil {
					later()
				}
			}
		}
	}
	kept := q.items[:0]
	for i, it := range q.items {
		if keep[i] {
			kept = append(kept, it)
		}
	}
	clear(q.items[len(kept):])
	q.items = kept
	q.compactAt = max(statusQueueBound, 2*len(kept))
	q.superseded += before - len(kept)
	if q.log != nil {
		q.log.Info("status updates queued past the bound: sending each task's newest only",
			"queued", before, "kept", len(kept), "superseded_total", q.superseded)
	}
}

// pushHealth queues a health update of a task. While the master is out of
// reach, only the latest health of a task matters: a replaceable update of
// the same task still waiting is replaced in place, if nothing else of
// that task follows it (so a task's updates keep their order). The head is
// never replaced: it may be on the wire.
func (q *statusQueue) pushHealth(it statusItem) {
	q.mu.Lock()
	for i := len(q.items) - 1; i >= 1; i-- {
		if q.items[i].upd.TaskID != it.upd.TaskID {
			continue
		}
		if q.items[i].replaceable {
			q.items[i] = it
			q.mu.Unlock()
			return
		}
		break
	}
	q.items = append(q.items, it)
	q.compactIfLongLocked()
	q.mu.Unlock()
	q.signal()
}

func (q *statusQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *statusQueue) head() (statusItem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return statusItem{}, false
	}
	return q.items[0], true
}

func (q *statusQueue) pop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items[0] = statusItem{}
	q.items = q.items[1:]
	if len(q.items) == 0 {
		for _, w := range q.waiters {
			close(w)
		}
		q.waiters = nil
	}
}

// drained returns a channel closed once the queue is empty.
func (q *statusQueue) drained() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	ch := make(chan struct{})
	if len(q.items) == 0 {
		close(ch)
	} else {
		q.waiters = append(q.waiters, ch)
	}
	return ch
}

// run sends queued updates until ctx ends.
func (q *statusQueue) run(ctx context.Context, a *Agent) {
	for {
		it, ok := q.head()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		if !a.deliverStatus(ctx, it.upd) {
			return
		}
		q.pop()
		if it.onAck != nil {
			it.onAck()
		}
	}
}

// deliverStatus sends one update, retrying with backoff (100ms..2s) until
// the master acks it. It waits while the agent is not registered. It
// returns false if ctx ended first.
func (a *Agent) deliverStatus(ctx context.Context, upd events.StatusUpdate) bool {
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return false
		case <-a.registeredCh():
		}
		upd.AgentID = a.ID()
		err := a.sendStatus(ctx, upd)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		a.log.Debug("status update not acked, retrying", "task", upd.TaskID, "state", upd.State, "err", err, "retry", backoff)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// sendStatus makes one attempt. An Ack carrying an error is still an ack.
func (a *Agent) sendStatus(ctx context.Context, upd events.StatusUpdate) error {
	data, err := json.Marshal(upd)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, a.statusTimeout)
	defer cancel()
	msg, err := a.cfg.NC.RequestWithContext(rctx, a.cfg.Subjects.Status(a.cfg.Hostname), data)
	if err != nil {
		return err
	}
	var ack events.Ack
	if len(msg.Data) > 0 {
		if err := json.Unmarshal(msg.Data, &ack); err != nil {
			return fmt.Errorf("bad ack: %w", err)
		}
	}
	if ack.Error != "" {
		a.log.Warn("master refused status update", "task", upd.TaskID, "state", upd.State, "err", ack.Error)
	} else {
		a.log.Debug("status update acked", "task", upd.TaskID, "state", upd.State)
	}
	return nil
}

// sendUpdate queues a status update; onAck (may be nil) runs once acked.
func (a *Agent) sendUpdate(taskID string, state events.TaskState, msg string, onAck func()) {
	a.status.push(statusItem{
		upd:   events.StatusUpdate{TaskID: taskID, State: state, Message: msg, Time: time.Now().UTC()},
		onAck: onAck,
	})
}

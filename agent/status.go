package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

// maxStatusesPerRequest bounds the updates sent in one request (a
// StatusBatch); a batch is also cut to fit the server's largest message.
const maxStatusesPerRequest = 256

// statusQueue sends status updates in order, all those queued in one
// request (up to maxStatusesPerRequest), each retried until acked.
// Pushing never blocks. Past statusQueueBound the queue keeps only what
// the master must hear: each task's newest update, and the update that
// hit a health check's limit until a state change follows it; so it holds
// at most about two updates per task.
type statusQueue struct {
	mu    sync.Mutex
	items []statusItem
	// sending is how many items, from the head, are on the wire: no
	// compaction or replacement touches them, so that the master's acks
	// still match them. The head is never touched either.
	sending int
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
// its successor's does. What is on the wire is kept (pinnedLocked). q.mu
// held.
func (q *statusQueue) compactIfLongLocked() {
	if len(q.items) <= q.compactAt {
		return
	}
	before, pinned := len(q.items), q.pinnedLocked()
	// Walk from the newest: latest is each task's next kept update.
	latest := map[string]int{}
	keep := make([]bool, len(q.items))
	for i := len(q.items) - 1; i >= 0; i-- {
		it := q.items[i]
		j, seen := latest[it.upd.TaskID]
		if i < pinned || !seen || !q.items[j].supersedes(it) {
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
// that task follows it (so a task's updates keep their order). What is on
// the wire is never replaced (pinnedLocked).
func (q *statusQueue) pushHealth(it statusItem) {
	q.mu.Lock()
	for i := len(q.items) - 1; i >= q.pinnedLocked(); i-- {
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

// pinnedLocked is how many items, from the head, stay as they are: those
// on the wire, and at least the head. q.mu held.
func (q *statusQueue) pinnedLocked() int { return max(q.sending, 1) }

func (q *statusQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) == 0
}

// take marks up to n items from the head as on the wire and returns their
// updates; none if the queue is empty.
func (q *statusQueue) take(n int) []events.StatusUpdate {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sending = min(n, len(q.items))
	ups := make([]events.StatusUpdate, q.sending)
	for i := range ups {
		ups[i] = q.items[i].upd
	}
	return ups
}

// acked drops the first n items the master acked, ends their time on the
// wire (the rest of what was taken is sent again), and returns them.
func (q *statusQueue) acked(n int) []statusItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	done := slices.Clone(q.items[:n])
	clear(q.items[:n])
	q.items = q.items[n:]
	q.sending = 0
	if len(q.items) == 0 {
		for _, w := range q.waiters {
			close(w)
		}
		q.waiters = nil
	}
	return done
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

// run sends queued updates until ctx ends: all that are queued, in order,
// in one request; those the master did not ack go again, with whatever
// was queued since, after a backoff (100ms..2s) if it acked none. It
// waits while the agent is not registered.
func (q *statusQueue) run(ctx context.Context, a *Agent) {
	backoff := 100 * time.Millisecond
	for {
		if q.empty() {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-a.registeredCh():
		}
		ups := q.take(maxStatusesPerRequest) // only run takes items out
		id := a.ID()
		for i := range ups {
			ups[i].AgentID = id
		}
		n, err := a.sendStatuses(ctx, ups)
		for _, it := range q.acked(n) {
			if it.onAck != nil {
				it.onAck()
			}
		}
		if n > 0 {
			backoff = 100 * time.Millisecond
			continue
		}
		if ctx.Err() != nil {
			return
		}
		a.log.Debug("status updates not acked, retrying", "task", ups[0].TaskID, "state", ups[0].State, "updates", len(ups), "err", err, "retry", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// errNotBatched is a master's answer to a batch without an ack per
// update: a master that predates batches (it recorded nothing).
var errNotBatched = errors.New("the master does not take batched status updates")

// sendStatuses makes one attempt at ups and returns how many, from the
// first, the master acked: a lone update when there is one, a batch cut
// to fit the server's largest message otherwise, and the updates one at a
// time to a master that predates batches.
func (a *Agent) sendStatuses(ctx context.Context, ups []events.StatusUpdate) (int, error) {
	if len(ups) == 1 {
		if err := a.sendStatus(ctx, ups[0]); err != nil {
			return 0, err
		}
		return 1, nil
	}
	n, err := a.sendStatusBatch(ctx, ups)
	if !errors.Is(err, errNotBatched) {
		return n, err
	}
	a.log.Info("master predates batched status updates; sending them one at a time", "updates", len(ups))
	for i, upd := range ups {
		if err := a.sendStatus(ctx, upd); err != nil {
			return i, err
		}
	}
	return len(ups), nil
}

// sendStatusBatch sends as many of ups as fit in one message as a
// StatusBatch and returns how many the master acked.
func (a *Agent) sendStatusBatch(ctx context.Context, ups []events.StatusUpdate) (int, error) {
	limit := int(a.cfg.NC.MaxPayload())
	var data []byte
	for {
		var err error
		data, err = json.Marshal(events.StatusBatch{Updates: ups})
		if err != nil {
			return 0, err
		}
		if limit <= 0 || len(data) <= limit || len(ups) == 1 {
			break
		}
		ups = ups[:len(ups)/2]
	}
	rctx, cancel := context.WithTimeout(ctx, a.statusTimeout)
	defer cancel()
	msg, err := a.cfg.NC.RequestWithContext(rctx, a.cfg.Subjects.Status(a.cfg.Hostname), data)
	if err != nil {
		return 0, err
	}
	var reply events.AckBatch
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return 0, fmt.Errorf("bad ack: %w", err)
	}
	if reply.Acks == nil {
		return 0, errNotBatched
	}
	n := min(len(reply.Acks), len(ups))
	for i, ack := range reply.Acks[:n] {
		upd := ups[i]
		switch {
		case ack.TaskID != upd.TaskID:
			// Not an answer to this batch: nothing from here on counts.
			return i, fmt.Errorf("ack %d is for task %q, sent %q", i, ack.TaskID, upd.TaskID)
		case ack.Error != "":
			a.log.Warn("master refused status update", "task", upd.TaskID, "state", upd.State, "err", ack.Error)
		default:
			a.log.Debug("status update acked", "task", upd.TaskID, "state", upd.State)
		}
	}
	if n < len(ups) {
		a.log.Debug("master acked part of a batch; sending the rest again", "acked", n, "sent", len(ups))
	}
	return n, nil
}

// sendStatus makes one attempt at a lone update. An Ack carrying an error
// is still an ack.
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

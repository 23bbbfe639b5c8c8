package master

import (
	"fmt"
	"sync"

	"github.com/atollhq/atoll/events"
)

// The published state is the state as followers have it: the state the
// term loaded, then every event the store accepted, applied in seq order
// by the committer right after the store took it and before it goes out
// on NATS and /v2/events. It is a follower inside the leader (client-go's
// shared informer: one cache, many handlers): /v2/events' frames are made
// from it, snapshots are cloned from it and sync ticks report its seq, and
// none of them takes the master's lock, so a snapshot of 100,000 tasks no
// longer holds up every writer. It only ever sees stored events: a change
// the store refused is taken back out of the working state, and was never
// here.
//
// It costs a second copy of the state (records shared with the working
// state, maps and the app index not): about 43 MiB at 100,000 tasks
// (BenchmarkSecondStateHeap100k). It keeps no agent index: followers do
// not ask for an agent's tasks.

// published is the committer's follower. state is written only by the
// committer (and by the term's start, while no committer runs), so the
// committer reads it without the lock; it writes it, and advances the
// digest chain, under mu, so a snapshot or a sync tick sees the state and
// the chain at the same seq.
type published struct {
	mu    sync.RWMutex
	state *events.State // nil until a term starts
	// broken is why state is not the stored history any more (an event
	// the store accepted did not apply: a bug). Snapshots are refused
	// until the next term loads the state afresh.
	broken error
}

// reset starts a term's published state from the state it loaded.
func (p *published) reset(loaded *events.State) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state, p.broken = loaded, nil
}

// publishStored applies events the store accepted to the published state
// and sends them out, in order: on /v2/events with the frames made against
// the state before each, and on NATS. Only the committer calls it.
func (m *Master) publishStored(evs []events.Event) {
	p := &m.pipe.published
	for _, e := range evs {
		frames := sseFrames(p.state, e) // before Apply: compares with the old records
		p.mu.Lock()
		if err := p.state.Apply(e); err != nil && p.broken == nil {
			p.broken = fmt.Errorf("published state at %d-%d: stored event %s: %w", p.state.Epoch, p.state.Seq, e.SSEID(), err)
			m.log.Error("the published state is out of step with the store; snapshots are refused until the next term", "err", p.broken)
		}
		if err := m.pub.Publish(e); err != nil {
			// Followers notice the gap at the next event or sync tick.
			m.log.Warn("publish event", "seq", e.Seq, "err", err)
		}
		p.mu.Unlock()
		m.sse.publish(e.Epoch, e.Seq, frames)
		m.metrics.events.WithLabelValues(string(e.Type)).Inc()
	}
}

// publishedState is a snapshot for followers: the published state, and
// the digest of the chain there.
func (m *Master) publishedState() (events.Snapshot, error) {
	p := &m.pipe.published
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !m.Leading() || p.state == nil {
		return events.Snapshot{}, ErrNotLeader
	}
	if p.broken != nil {
		return events.Snapshot{}, p.broken
	}
	// The copy is encoded, never asked: its index is not worth the
	// committer's wait.
	s := p.state.CloneUnindexed()
	return events.Snapshot{State: s, Digest: m.pub.Digest(s.Epoch, s.Seq)}, nil
}

// publishSyncTick publishes the published (epoch, seq) for followers to
// check against.
func (m *Master) publishSyncTick() {
	p := &m.pipe.published
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !m.Leading() || p.state == nil || p.state.Seq == 0 {
		return
	}
	if err := m.pub.PublishSync(p.state.Epoch, p.state.Seq, m.cfg.Now()); err != nil {
		m.log.Warn("publish sync tick", "err", err)
	}
}

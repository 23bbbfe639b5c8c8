package events

import "context"

// Snapshot is a leader's state with the digest of its chain at the
// state's (epoch, seq); a zero Digest is unknown.
type Snapshot struct {
	State  *State
	Digest Digest
}

// Source is what a follower reads: a stream of events (sync ticks included)
// in publish order, and snapshots on demand. Package events/natsbus has the
// Source over NATS; events itself knows no transport.
type Source interface {
	// Subscribe calls deliver for every event until stop is called,
	// with the bytes the event arrived as: what the leader's digest
	// chain hashed. deliver must not block.
	Subscribe(deliver func(e Event, data []byte)) (stop func(), err error)
	// Snapshot asks the leader for its state and the digest at it.
	Snapshot(ctx context.Context) (Snapshot, error)
}

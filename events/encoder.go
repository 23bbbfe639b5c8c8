package events

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// EncodeEvent is an event's wire form on NATS: JSON, redacted (see
// Redacted). DecodeEvent reads it back.
func EncodeEvent(e Event) ([]byte, error) {
	data, err := json.Marshal(e.Redacted())
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.SSEID(), err)
	}
	return data, nil
}

// Encoder turns a leader's events into the bytes it publishes and keeps
// its digest chain over them (see Chain): the master's Publisher and the
// tests' fake leader both use it, so their ticks and snapshots carry the
// same digests for the same events. It is safe for concurrent use; a
// caller that pairs Digest with a state must hold whatever lock keeps the
// two in step (the master's state lock).
type Encoder struct {
	mu    sync.Mutex
	chain Chain
}

// Event encodes a state event and hashes the bytes into the chain. The
// chain advances even when the bytes are never sent (a failed publish) or
// cannot be made (then it hashes nothing): the digest follows what the
// leader meant to publish, and followers see the gap anyway. A sync tick
// is encoded as it is and leaves the chain alone.
func (w *Encoder) Event(e Event) ([]byte, error) {
	data, err := EncodeEvent(e)
	if e.Type == Sync {
		return data, err
	}
	w.mu.Lock()
	w.chain.Add(e.Epoch, e.Seq, data)
	w.mu.Unlock()
	return data, err
}

// Sync makes the tick for (epoch, seq), carrying the chain's digest at that
// point (zero when the chain is elsewhere), and its bytes.
func (w *Encoder) Sync(epoch, seq uint64, now time.Time) (Event, []byte, error) {
	e := Event{Epoch: epoch, Seq: seq, Type: Sync, Time: now, Digest: w.Digest(epoch, seq)}
	data, err := EncodeEvent(e)
	return e, data, err
}

// Digest is the chain's digest at (epoch, seq), zero when the chain is
// elsewhere: what a snapshot of the state at that point carries.
func (w *Encoder) Digest(epoch, seq uint64) Digest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.chain.At(epoch, seq)
}

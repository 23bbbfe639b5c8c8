package events

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Digest is a point of a leader's digest chain (see Chain). The zero
// Digest means "unknown": a tick or snapshot without one is not compared.
type Digest [sha256.Size]byte

// IsZero reports whether d is unknown; encoding/json's omitzero uses it.
func (d Digest) IsZero() bool { return d == Digest{} }

// String is the digest in hex, or "none" when it is unknown.
func (d Digest) String() string {
	if d.IsZero() {
		return "none"
	}
	return hex.EncodeToString(d[:])
}

// MarshalText encodes d as 64 hex digits.
func (d Digest) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(len(d)))
	hex.Encode(out, d[:])
	return out, nil
}

// UnmarshalText decodes 64 hex digits.
func (d *Digest) UnmarshalText(text []byte) error {
	if len(text) != hex.EncodedLen(len(d)) {
		return fmt.Errorf("digest: %d characters, want %d hex digits", len(text), hex.EncodedLen(len(d)))
	}
	if _, err := hex.Decode(d[:], text); err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	return nil
}

// Chain is the running digest over the events a leader published in one
// epoch, in publish order:
//
//	digest(first seq of the epoch - 1) = zero
//	digest(n) = SHA-256(digest(n-1) || bytes of event n as published)
//
// The bytes are exactly what went on the wire (EncodeEvent's output), so a
// follower hashes what it received without re-encoding anything. The
// leader's sync ticks and snapshots carry the digest at their seq; a
// follower that applied the same events in the same order has the same
// digest, and one that applied anything else (a forged event, a bug) does
// not. Equal states reached by different events differ too: the chain
// proves the history, which is what the follower received.
//
// The zero Chain is unknown: Add does nothing to it until an event of a
// new epoch starts the chain afresh.
type Chain struct {
	epoch, seq uint64
	sum        Digest
	known      bool
}

// ChainAt returns the chain as it stands at (epoch, seq) with digest sum,
// as a snapshot reports it. A zero sum gives an unknown chain.
func ChainAt(epoch, seq uint64, sum Digest) Chain {
	return Chain{epoch: epoch, seq: seq, sum: sum, known: !sum.IsZero()}
}

// Add hashes the bytes of event (epoch, seq) into the chain. An event of
// another epoch than the chain's starts the chain anew from zero: each
// leader term has its own chain, and followers resync at an epoch change.
func (c *Chain) Add(epoch, seq uint64, data []byte) {
	if epoch != c.epoch {
		*c = Chain{epoch: epoch, known: true}
	}
	c.seq = seq
	if !c.known {
		return
	}
	h := sha256.New()
	h.Write(c.sum[:])
	h.Write(data)
	h.Sum(c.sum[:0])
}

// At returns the digest at (epoch, seq), or zero (unknown) when the chain
// is not at that point or not known.
func (c Chain) At(epoch, seq uint64) Digest {
	if !c.known || c.epoch != epoch || c.seq != seq {
		return Digest{}
	}
	return c.sum
}

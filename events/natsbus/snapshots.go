package natsbus

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// ServeSnapshots answers snapshot requests with whatever snap returns,
// redacted, until the returned subscription is drained. snap must return
// a state that is not mutated afterwards (a clone), with the digest read
// under the same lock.
//
// A request whose reply subject is not an inbox gets no answer (see
// events.IsInbox); refused, if set, hears of it.
func ServeSnapshots(nc *nats.Conn, subj events.Subjects, snap func() (events.Snapshot, error), refused func(reply string)) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(subj.Snapshot(), func(m *nats.Msg) {
		if !events.IsInbox(m.Reply) {
			if refused != nil {
				refused(m.Reply)
			}
			return
		}
		var reply events.SnapshotReply
		s, err := snap()
		switch {
		case err != nil:
			reply.Error = err.Error()
		case s.State == nil:
			reply.Error = "no state"
		default:
			reply.State, reply.Digest = s.State.Redacted(), s.Digest
		}
		data, err := encodeSnapshot(reply)
		if err != nil {
			data, _ = encodeSnapshot(events.SnapshotReply{Error: err.Error()})
		}
		_ = m.Respond(data)
	})
	if err != nil {
		return nil, fmt.Errorf("serve snapshots on %s: %w", subj.Snapshot(), err)
	}
	return sub, nil
}

// Snapshots are gzipped JSON: a cluster's state is far larger than one
// event and NATS limits a message to 1 MB by default.
func encodeSnapshot(r events.SnapshotReply) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(r); err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeSnapshot(data []byte) (events.Snapshot, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return events.Snapshot{}, fmt.Errorf("decompress snapshot: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return events.Snapshot{}, fmt.Errorf("decompress snapshot: %w", err)
	}
	var r events.SnapshotReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return events.Snapshot{}, fmt.Errorf("decode snapshot: %w", err)
	}
	if r.Error != "" {
		return events.Snapshot{}, fmt.Errorf("snapshot refused by leader: %s", r.Error)
	}
	if r.State == nil {
		return events.Snapshot{}, fmt.Errorf("snapshot reply without state")
	}
	return events.Snapshot{State: r.State.Normalize(), Digest: r.Digest}, nil
}

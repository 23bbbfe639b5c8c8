package events_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// chainOf hashes data as events 1..n of epoch 1.
func chainOf(data ...string) events.Chain {
	var c events.Chain
	for i, d := range data {
		c.Add(1, uint64(i+1), []byte(d))
	}
	return c
}

func TestChainFollowsHistory(t *testing.T) {
	abc := chainOf("a", "b", "c")
	d := abc.At(1, 3)
	if d.IsZero() {
		t.Fatalf("digest at 1-3 is unknown")
	}
	if again := chainOf("a", "b", "c"); again.At(1, 3) != d {
		t.Errorf("same events, different digests")
	}
	for name, other := range map[string]events.Chain{
		"one event changed": chainOf("a", "x", "c"),
		"order changed":     chainOf("b", "a", "c"),
		// The events' bytes are hashed one by one: moving a byte from
		// one event to the next is a different history.
		"boundary moved": chainOf("ab", "", "c"),
	} {
		if other.At(1, 3) == d {
			t.Errorf("%s: same digest", name)
		}
	}

	// The digest is known only at the chain's own point.
	for _, at := range [][2]uint64{{1, 2}, {1, 4}, {2, 3}} {
		if got := abc.At(at[0], at[1]); !got.IsZero() {
			t.Errorf("At(%d, %d) = %s, want unknown", at[0], at[1], got)
		}
	}

	// A follower that starts from the digest at 1-2 and hashes event 3
	// ends where the leader is.
	ab := chainOf("a", "b")
	f := events.ChainAt(1, 2, ab.At(1, 2))
	f.Add(1, 3, []byte("c"))
	if f.At(1, 3) != d {
		t.Errorf("follower's chain %s, leader's %s", f.At(1, 3), d)
	}

	// A new epoch starts from zero, whatever came before.
	e2 := abc
	e2.Add(2, 4, []byte("z"))
	var fresh events.Chain
	fresh.Add(2, 4, []byte("z"))
	if e2.At(2, 4) != fresh.At(2, 4) || e2.At(2, 4).IsZero() {
		t.Errorf("epoch 2's chain depends on epoch 1's")
	}
}

// A chain started from an unknown digest stays unknown: hashing on from
// zero would invent a digest the leader never had.
func TestChainUnknownStaysUnknown(t *testing.T) {
	c := events.ChainAt(1, 7, events.Digest{})
	c.Add(1, 8, []byte("e"))
	if d := c.At(1, 8); !d.IsZero() {
		t.Errorf("unknown chain produced %s", d)
	}
}

func TestDigestText(t *testing.T) {
	c := chainOf("a")
	d := c.At(1, 1)
	text, err := d.MarshalText()
	if err != nil || len(text) != 64 || string(text) != d.String() {
		t.Fatalf("MarshalText = %q, %v; String %q", text, err, d.String())
	}
	var back events.Digest
	if err := back.UnmarshalText(text); err != nil || back != d {
		t.Errorf("UnmarshalText(%q) = %s, %v", text, back, err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("g", 64), strings.Repeat("a", 66)} {
		var x events.Digest
		if err := x.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", bad)
		}
	}
	if s := (events.Digest{}).String(); s != "none" {
		t.Errorf("zero digest prints %q", s)
	}
}

// Ticks carry the digest in JSON; other events never do, and a tick
// without one (an older leader) still decodes.
func TestEventDigestOnTicksOnly(t *testing.T) {
	var enc events.Encoder
	e := events.PutApp(eventstest.App("/web", 1)).Stamp(events.NewState(), 1, eventstest.T0)
	data, err := enc.Event(e)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "digest") {
		t.Errorf("event carries a digest: %s", data)
	}
	tick, tickData, err := enc.Sync(1, 1, eventstest.T0)
	if err != nil {
		t.Fatal(err)
	}
	var want events.Chain
	want.Add(1, 1, data)
	if tick.Digest != want.At(1, 1) {
		t.Errorf("tick digest %s, want %s", tick.Digest, want.At(1, 1))
	}
	got, err := events.DecodeEvent(tickData)
	if err != nil || got.Digest != tick.Digest {
		t.Errorf("decoded tick %+v, %v; want digest %s", got, err, tick.Digest)
	}
	if got, err := events.DecodeEvent([]byte(`{"epoch":1,"seq":1,"type":"sync"}`)); err != nil || !got.Digest.IsZero() {
		t.Errorf("tick without digest: %+v, %v", got, err)
	}
	for _, bad := range []string{
		`{"epoch":1,"seq":1,"type":"sync","digest":"xyz"}`,
		`{"epoch":1,"seq":1,"type":"app_removed","id":"/web","digest":"` + tick.Digest.String() + `"}`,
	} {
		if _, err := events.DecodeEvent([]byte(bad)); err == nil {
			t.Errorf("DecodeEvent(%s) accepted", bad)
		}
	}
	// A tick for a point the chain is not at carries no digest.
	if other, _, _ := enc.Sync(1, 5, eventstest.T0); !other.Digest.IsZero() {
		t.Errorf("tick at 1-5 with the chain at 1-1 carries %s", other.Digest)
	}
}

// The leader's chain advances over what it meant to publish even when the
// publish fails: it stays the chain of the leader's state, and the
// follower, which never got the event, sees a gap.
func TestEncoderAdvancesWithoutSending(t *testing.T) {
	var sent, unsent events.Encoder
	s := events.NewState()
	for _, c := range []events.Change{events.PutAgent(eventstest.Agent("a1")), events.PutApp(eventstest.App("/web", 1))} {
		e := c.Stamp(s, 1, eventstest.T0)
		if err := s.Apply(e); err != nil {
			t.Fatal(err)
		}
		if _, err := sent.Event(e); err != nil {
			t.Fatal(err)
		}
		_, _ = unsent.Event(e) // "published" nowhere
	}
	if a, b := sent.Digest(1, 2), unsent.Digest(1, 2); a != b || a.IsZero() {
		t.Errorf("digests %s and %s", a, b)
	}
}

func TestSnapshotReplyCarriesDigest(t *testing.T) {
	d := chainOf("a").At(1, 1)
	data, err := json.Marshal(events.SnapshotReply{State: events.NewState(), Digest: d})
	if err != nil {
		t.Fatal(err)
	}
	var back events.SnapshotReply
	if err := json.Unmarshal(data, &back); err != nil || back.Digest != d {
		t.Errorf("reply %s decodes to digest %s, %v", data, back.Digest, err)
	}
	data, _ = json.Marshal(events.SnapshotReply{Error: "not the leader"})
	if strings.Contains(string(data), "digest") {
		t.Errorf("reply without digest: %s", data)
	}
}

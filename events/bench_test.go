package events_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// BenchmarkApplyTaskUpdate measures the cost of one task event on a state
// of 10,000 tasks: what every follower pays per event.
func BenchmarkApplyTaskUpdate(b *testing.B) {
	s := events.NewState()
	epoch := uint64(1)
	for i := 0; i < 10000; i++ {
		t := events.Task{ID: fmt.Sprintf("app_%d.%d", i%100, i), AppID: fmt.Sprintf("/app%d", i%100), State: events.TaskRunning}
		if err := s.Apply(events.PutTask(t).Stamp(s, epoch, time.Unix(0, 0))); err != nil {
			b.Fatal(err)
		}
	}
	t := events.Task{ID: "app_1.1", AppID: "/app1", State: events.TaskRunning}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Apply(events.PutTask(t).Stamp(s, epoch, time.Unix(0, 0))); err != nil {
			b.Fatal(err)
		}
	}
}

// benchState is a state of 10,000 tasks and a typical task to update in it.
func benchState(b *testing.B) (*events.State, events.Task) {
	s := events.NewState()
	for i := 0; i < 10000; i++ {
		t := events.Task{ID: fmt.Sprintf("app_%d.%d", i%100, i), AppID: fmt.Sprintf("/app%d", i%100), State: events.TaskRunning}
		if err := s.Apply(events.PutTask(t).Stamp(s, 1, time.Unix(0, 0))); err != nil {
			b.Fatal(err)
		}
	}
	return s, events.Task{
		ID: "app_1.1", AppID: "/app1", AgentID: "agent-1", Host: "agent-1.test",
		IPAddresses: []events.IPAddress{{IPAddress: "10.0.0.1", Protocol: "IPv4"}},
		Ports:       []int{31001}, ServicePorts: []int{10001}, State: events.TaskRunning,
		StagedAt: time.Unix(0, 0), Version: time.Unix(0, 0), Cpus: 0.1, Mem: 32,
	}
}

// BenchmarkFollowerEvent is a follower's whole cost per event from the
// bytes NATS hands it: decode, apply, and (with digest) hash the bytes into
// the digest chain. The difference between the two is what checking the
// leader's digest costs.
func BenchmarkFollowerEvent(b *testing.B) {
	for _, digest := range []bool{false, true} {
		b.Run(map[bool]string{false: "without-digest", true: "with-digest"}[digest], func(b *testing.B) {
			s, t := benchState(b)
			chain := events.ChainAt(1, s.Seq, events.Digest{1})
			// What NATS would hand the follower: b.N consecutive events.
			var enc events.Encoder
			next := s.Clone()
			wire := make([][]byte, b.N)
			for i := range wire {
				e := events.PutTask(t).Stamp(next, 1, time.Unix(0, 0))
				next.Seq = e.Seq
				data, err := enc.Event(e)
				if err != nil {
					b.Fatal(err)
				}
				wire[i] = data
			}
			b.ReportAllocs()
			b.ResetTimer()
			for _, data := range wire {
				e, err := events.DecodeEvent(data)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Apply(e); err != nil {
					b.Fatal(err)
				}
				if digest {
					chain.Add(e.Epoch, e.Seq, data)
				}
			}
		})
	}
}

// BenchmarkLeaderEncode is the leader's cost per event: redact and encode
// for NATS, then hash into the chain (Encoder.Event) or not (EncodeEvent).
func BenchmarkLeaderEncode(b *testing.B) {
	_, t := benchState(b)
	e := events.PutTask(t).Stamp(events.NewState(), 1, time.Unix(0, 0))
	b.ResetTimer()
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := events.EncodeEvent(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode+digest", func(b *testing.B) {
		var enc events.Encoder
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			e.Seq = uint64(i + 1)
			if _, err := enc.Event(e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkChainAdd is the digest step alone, over one task event's bytes.
func BenchmarkChainAdd(b *testing.B) {
	_, t := benchState(b)
	data, err := events.EncodeEvent(events.PutTask(t).Stamp(events.NewState(), 1, time.Unix(0, 0)))
	if err != nil {
		b.Fatal(err)
	}
	var c events.Chain
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Add(1, uint64(i+1), data)
	}
}

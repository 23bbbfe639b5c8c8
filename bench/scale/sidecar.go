package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/atollhq/atoll/events"
)

// sidecar is an events.Follower in the bench process, on a sidecar
// credential of its own, as the DNS and LB sidecars follow the leader. It
// measures each event from the leader's timestamp to its application here
// (one clock: same machine) and notes every agent the master declares
// unreachable.
type sidecar struct {
	f *events.Follower

	mu          sync.Mutex
	lat         []time.Duration // since the last take
	unreachable map[string]bool // hostnames, since the last take
	everUnreach map[string]bool
}

func newSidecar(src events.Source) *sidecar {
	s := &sidecar{unreachable: map[string]bool{}, everUnreach: map[string]bool{}}
	s.f = &events.Follower{Source: src, Handler: s, Log: slog.New(slog.DiscardHandler)}
	return s
}

func (s *sidecar) run(ctx context.Context) { _ = s.f.Run(ctx) }

// Reset implements events.Handler. A follower that fell behind resyncs
// from a snapshot: the agents unreachable in it count too (their event
// may be among those it skipped).
func (s *sidecar) Reset(st *events.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range st.Agents {
		if a.State == events.AgentUnreachable {
			s.unreachable[a.Hostname] = true
			s.everUnreach[a.Hostname] = true
		}
	}
}

// Applied implements events.Handler.
func (s *sidecar) Applied(_ *events.State, e events.Event) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lat = append(s.lat, now.Sub(e.Time))
	if e.Type == events.AgentUpdated && e.Agent != nil && e.Agent.State == events.AgentUnreachable {
		s.unreachable[e.Agent.Hostname] = true
		s.everUnreach[e.Agent.Hostname] = true
	}
}

// take returns the latencies and unreachable agents seen since the last
// take, and starts afresh.
func (s *sidecar) take() ([]time.Duration, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lat, n := s.lat, len(s.unreachable)
	s.lat, s.unreachable = nil, map[string]bool{}
	return lat, n
}

// everUnreachable counts the agents declared unreachable over the run.
func (s *sidecar) everUnreachable() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.everUnreach)
}

package lbsync

import (
	"maps"

	"github.com/atollhq/atoll/events"
)

// The quarantine is written by Run (when `haproxy -c` blames an app port)
// and read by the render side, hence its own lock.

// leaveOut quarantines the blamed ports of next's apps and reports them.
func (s *Syncer) leaveOut(next *Result, bad []AppError) {
	s.qmu.Lock()
	for _, e := range bad {
		app, ok := next.app(e.AppID)
		if !ok {
			continue
		}
		q, had := s.quarantine[e.AppID]
		if !had || !sameApp(&q.App, &app) {
			q = Quarantined{App: app, Ports: map[int]AppError{}}
		}
		q.Ports[e.PortIndex] = e
		s.quarantine[e.AppID] = q
	}
	s.qmu.Unlock()
	s.problems.addApps(bad)
}

// quarantined is a copy of the quarantine for one render.
func (s *Syncer) quarantined() Quarantine {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(s.quarantine) == 0 {
		return nil
	}
	return maps.Clone(s.quarantine)
}

func (s *Syncer) isQuarantined(id string, port int) bool {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	_, ok := s.quarantine[id].Ports[port]
	return ok
}

// pruneQuarantine releases the apps that are gone or defined anew: their
// next render is checked again.
func (s *Syncer) pruneQuarantine(st *events.State) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	for id, q := range s.quarantine {
		if app, ok := st.Apps[id]; !ok || !sameApp(&q.App, &app) {
			delete(s.quarantine, id)
		}
	}
}

func (s *Syncer) clearQuarantine() {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	clear(s.quarantine)
}

package events

// Fanout is a Handler that feeds several, so that one Follower (one
// subscription, one snapshot per resync, one copy of the state) serves
// every consumer of one process: a node's DNS server and its load
// balancer.
//
// Every member hears every call, in slice order, on the follower's
// goroutine, with the same *State:
//   - Reset: the same complete state for all, after the first snapshot
//     and after each resync, which is one snapshot for all;
//   - Applied: each event, once applied, to every member in turn;
//   - Idle: to the members that are IdleHandlers; the others hear nothing.
//
// So the members never disagree for longer than the call in progress: no
// member sees an event another missed, and a resync resets all.
//
// Calls are synchronous. A member that takes long (a load balancer
// rendering a large config on Idle) delays the next call to every member
// by that long; put the member whose answers must move first (DNS, whose
// updates are cheap) first. The events that arrive meanwhile wait in the
// follower's buffer (Follower.Buffer); if it overflows, the follower
// resyncs and every member gets one Reset from one snapshot: a slow member
// costs time, never a missed or diverging event. Members cannot run
// behind on their own: the state they are handed changes once the call
// returns, and a copy per member is what Fanout is there to avoid.
type Fanout []Handler

// Reset implements Handler.
func (f Fanout) Reset(s *State) {
	for _, h := range f {
		h.Reset(s)
	}
}

// Applied implements Handler.
func (f Fanout) Applied(s *State, e Event) {
	for _, h := range f {
		h.Applied(s, e)
	}
}

// Idle implements IdleHandler.
func (f Fanout) Idle(s *State) {
	for _, h := range f {
		if ih, ok := h.(IdleHandler); ok {
			ih.Idle(s)
		}
	}
}

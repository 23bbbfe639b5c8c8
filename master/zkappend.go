package master

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/atollhq/atoll/events"
)

// zkMulti is one Multi of an AppendAll: the fence check, the counter at
// its last event, and the record ops of its events.
type zkMulti struct {
	ops    []any
	size   int // estimated request bytes
	events int
	// marks are what s.names becomes once the Multi succeeded.
	marks []zkMark
}

// zkMark says that the record at base is now the znode name, holding
// data, or none ("").
type zkMark struct {
	base, name string
	data       []byte
}

// Estimated jute sizes: an op's header (type, done, err) and an op with
// no payload (path and data length prefixes, version or flags), generous.
const (
	zkOpOverhead    = 32
	zkMultiOverhead = 64
)

// AppendAll implements Store: the events' record ops go in as few Multis
// as maxMultiBytes allows, in order, each with the fence check and the
// counter at its last event, so a Multi is all or nothing and the counter
// always names the last event whose records are stored. An event no Multi
// could carry fails the whole batch before anything is sent.
//
// The Multis are sent without waiting for each other's replies (up to
// zkMultisInFlight at once), so that ZooKeeper works on one while the
// next is on its way. Each sets the
// counter at the version the Multi before it leaves (not whatever it is),
// so a Multi stores nothing unless every one before it was stored: when
// one fails, the ones after it fail too, and the counter still names the
// last stored event. One that reached ZooKeeper before the Multi ahead of
// it (go-zookeeper does not say in what order concurrent requests leave)
// fails the same way, and is sent again once that one is stored.
func (s *ZKStore) AppendAll(evs []events.Event) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	what := spanOf(evs)
	if s.conn == nil || !s.loaded {
		return 0, fmt.Errorf("zk store: append %s: not loaded: %w", what, ErrNotLeader)
	}
	if s.broken != nil {
		return 0, fmt.Errorf("zk store: append %s: %w", what, s.broken)
	}
	multis, err := s.plan(evs)
	if err != nil {
		return 0, fmt.Errorf("zk store: append %s: %w", what, err)
	}
	replies := s.sendMultis(multis)
	// Every reply is taken, even after a failure: the senders have all
	// returned when AppendAll does.
	done, failed := 0, error(nil)
	for i, m := range multis {
		r := <-replies[i]
		if failed != nil {
			continue
		}
		part := spanOf(evs[done : done+m.events])
		if r.counterBehind() {
			// Every Multi before it is stored (or failed would be set):
			// it overtook one of them.
			s.resent++
			r.res, r.err = s.multi(s.conn, m.ops...)
		}
		switch {
		case r.err == nil:
			for _, mk := range m.marks {
				if mk.name != "" {
					s.names[mk.base] = mk.name
					s.written[mk.base] = zkRecord{base: mk.base, path: mk.name, data: mk.data}
				} else {
					delete(s.names, mk.base)
					delete(s.written, mk.base)
				}
				s.sinceCache++
			}
			s.counterVersion++
			done += m.events
		case len(r.res) > 0 && r.res[0].Error != nil:
			// Op 0 is the fence check: a newer leader bumped leader_epoch.
			s.fail(fmt.Errorf("leader_epoch moved on: %w", ErrFenced))
			failed = fmt.Errorf("zk store: append %s: %w", part, s.broken)
		case len(r.res) == 0:
			// No reply: the Multi may or may not have happened, so what we
			// know of the store is no longer certain.
			s.fail(fmt.Errorf("write outcome unknown: %w", r.err))
			failed = fmt.Errorf("zk store: append %s: %w", part, s.broken)
		case r.counterBehind():
			// Not where every Multi this store made left it, though
			// leader_epoch says no other leader wrote: what we know of the
			// store is wrong.
			s.fail(fmt.Errorf("the counter is not at version %d, where this store's last write left it: %w",
				s.counterVersion, r.err))
			failed = fmt.Errorf("zk store: append %s: %w", part, s.broken)
		default:
			// ZooKeeper refused one record op; this Multi changed nothing,
			// and neither did the ones after it (their counter check).
			failed = fmt.Errorf("zk store: append %s: %s: %w", part, refusedOp(m.ops, r.res), r.err)
		}
	}
	if failed != nil {
		return done, failed
	}
	s.maybeRefreshCache(nil)
	return done, nil
}

// zkReply is what a Multi of AppendAll came back with.
type zkReply struct {
	res []zk.MultiResponse
	err error
}

// counterBehind says the Multi failed on its counter op (op 1) alone: the
// counter was not at the version it expected.
func (r zkReply) counterBehind() bool {
	return r.err != nil && len(r.res) > 1 && r.res[0].Error == nil && errors.Is(r.res[1].Error, zk.ErrBadVersion)
}

// multi sends one Multi of AppendAll.
func (s *ZKStore) multi(conn *zk.Conn, ops ...any) ([]zk.MultiResponse, error) {
	if s.sendMulti != nil {
		return s.sendMulti(conn, ops...)
	}
	start := time.Now()
	res, err := conn.Multi(ops...)
	if err == nil {
		s.noteAlive(conn, start)
	}
	return res, err
}

// zkMultisInFlight bounds the Multis of one AppendAll in flight at once:
// two keep ZooKeeper busy with one while the next is on its way, and
// every other request on the session (the lease's renewals, the cache
// writer's) waits behind at most those two.
const zkMultisInFlight = 2

// sendMultis sends every Multi on its own goroutine, each started once
// the one before it is about to send and fewer than zkMultisInFlight are
// in flight, and returns where each one's reply comes. s.mu must be held.
func (s *ZKStore) sendMultis(multis []zkMulti) []chan zkReply {
	replies := make([]chan zkReply, len(multis))
	conn, send := s.conn, s.multi
	slots := make(chan struct{}, zkMultisInFlight)
	ahead := make(chan struct{})
	close(ahead)
	for i, m := range multis {
		if s.beforeMulti != nil {
			s.beforeMulti(i)
		}
		s.multis++
		reply, sending := make(chan zkReply, 1), make(chan struct{})
		replies[i] = reply
		go func(ahead <-chan struct{}) {
			<-ahead
			slots <- struct{}{}
			close(sending)
			res, err := send(conn, m.ops...)
			<-slots
			reply <- zkReply{res, err}
		}(ahead)
		ahead = sending
	}
	return replies
}

// spanOf names a batch of events by their ids on the SSE stream.
func spanOf(evs []events.Event) string {
	what := evs[0].SSEID()
	if len(evs) > 1 {
		what += ".." + evs[len(evs)-1].SSEID()
	}
	return what
}

// refusedOp names the op ZooKeeper refused in a failed Multi.
func refusedOp(ops []any, res []zk.MultiResponse) string {
	for i, r := range res {
		if r.Error == nil || i >= len(ops) {
			continue
		}
		switch op := ops[i].(type) {
		case *zk.CreateRequest:
			return fmt.Sprintf("create %s: %v", op.Path, r.Error)
		case *zk.SetDataRequest:
			return fmt.Sprintf("set %s: %v", op.Path, r.Error)
		case *zk.DeleteRequest:
			return fmt.Sprintf("delete %s: %v", op.Path, r.Error)
		}
	}
	return "a record op was refused"
}

// plan splits evs into Multis. s.mu must be held.
func (s *ZKStore) plan(evs []events.Event) ([]zkMulti, error) {
	// A record's znode after the events planned so far: a batch may
	// create a task and set it again, or create and delete it.
	overlay := map[string]string{}
	current := func(base string) string {
		if n, ok := overlay[base]; ok {
			return n
		}
		return s.names[base]
	}
	fixed := zkMultiOverhead + 2*zkOpOverhead + len(s.epochPath()) + len(s.counterPath()) + 64
	var out []zkMulti
	var cur zkMulti
	closeCur := func(last events.Event) error {
		cdata, err := json.Marshal(counter{Epoch: last.Epoch, Seq: last.Seq})
		if err != nil {
			return err
		}
		// The counter at the version the Multi before this one leaves
		// (see AppendAll).
		cur.ops = append([]any{
			&zk.CheckVersionRequest{Path: s.epochPath(), Version: s.fence},
			&zk.SetDataRequest{Path: s.counterPath(), Data: cdata, Version: s.counterVersion + int32(len(out))},
		}, cur.ops...)
		out = append(out, cur)
		cur = zkMulti{}
		return nil
	}
	for i, e := range evs {
		ops, marks, size, err := s.recordOps(e, current)
		if err != nil {
			return nil, fmt.Errorf("%s %s %s: %w", e.SSEID(), e.Type, e.ID, err)
		}
		if fixed+size > maxRequestBytes {
			return nil, fmt.Errorf("%s %s %s: its record is %d bytes, over the %d one ZooKeeper request may carry; nothing was stored",
				e.SSEID(), e.Type, e.ID, size, maxRequestBytes-fixed)
		}
		if cur.events > 0 && fixed+cur.size+size > maxMultiBytes {
			if err := closeCur(evs[i-1]); err != nil {
				return nil, err
			}
		}
		cur.ops = append(cur.ops, ops...)
		cur.marks = append(cur.marks, marks...)
		cur.size += size
		cur.events++
		for _, mk := range marks {
			overlay[mk.base] = mk.name
		}
	}
	if err := closeCur(evs[len(evs)-1]); err != nil {
		return nil, err
	}
	return out, nil
}

// fail makes every later AppendAll refuse with why. s.mu must be held.
func (s *ZKStore) fail(why error) {
	s.broken = why
	if s.lost != nil {
		s.lost(why)
	}
}

// recordOps are the znode operations of one event, what they make of
// s.names, and their estimated size in a request. A record's znode is
// named <escaped id>@<seq of the event that wrote it>, so its name says
// which version it holds (see zkcache.go): a put deletes the record's
// znode, if any, and creates the new one.
func (s *ZKStore) recordOps(e events.Event, current func(base string) string) (ops []any, marks []zkMark, size int, err error) {
	aclSize := 0
	for _, a := range s.cfg.ACL {
		aclSize += 12 + len(a.Scheme) + len(a.ID)
	}
	put := func(base string, rec any) ([]any, []zkMark, int, error) {
		data, err := json.Marshal(rec)
		if err != nil {
			return nil, nil, 0, err
		}
		stored, err := zkEncodeRecord(data)
		if err != nil {
			return nil, nil, 0, err
		}
		name := base + "@" + strconv.FormatUint(e.Seq, 10)
		ops := []any{&zk.CreateRequest{Path: name, Data: stored, Acl: s.cfg.ACL}}
		size := zkOpOverhead + len(name) + len(stored) + aclSize
		if cur := current(base); cur != "" {
			ops = append([]any{&zk.DeleteRequest{Path: cur, Version: -1}}, ops...)
			size += zkOpOverhead + len(cur)
		}
		return ops, []zkMark{{base, name, data}}, size, nil
	}
	del := func(base string) ([]any, []zkMark, int, error) {
		cur := current(base)
		if cur == "" {
			return nil, nil, 0, nil
		}
		return []any{&zk.DeleteRequest{Path: cur, Version: -1}}, []zkMark{{base: base}}, zkOpOverhead + len(cur), nil
	}
	switch e.Type {
	case events.AgentUpdated:
		return put(s.recordPath("agents", e.Agent.ID), e.Agent)
	case events.AgentRemoved:
		return del(s.recordPath("agents", e.ID))
	case events.AppUpdated:
		return put(s.recordPath("apps", e.App.ID), e.App)
	case events.AppRemoved:
		// The app's kept versions were forgotten by AppVersionRemoved
		// events before it (Master.deployLocked); its last failure goes
		// with it.
		return both(del(s.recordPath("apps", e.ID)))(del(s.recordPath("failures", e.ID)))
	case events.AppVersionAdded:
		return put(s.appVersionPath(e.App), e.App)
	case events.AppVersionRemoved:
		return del(s.appVersionPath(e.App))
	case events.GroupVersionAdded:
		return put(s.groupVersionPath(e.GroupVersion), e.GroupVersion)
	case events.GroupVersionRemoved:
		return del(s.groupVersionPath(e.GroupVersion))
	case events.AppKept:
		return put(s.keptAppPath(e.App), e.App)
	case events.AppReleased:
		return del(s.keptAppPath(e.App))
	case events.DeploymentUpdated:
		return put(s.recordPath("deployments", e.Deployment.ID), e.Deployment)
	case events.DeploymentRemoved:
		return del(s.recordPath("deployments", e.ID))
	case events.GroupUpdated:
		return put(s.recordPath("groups", e.Group.ID), e.Group)
	case events.GroupRemoved:
		return del(s.recordPath("groups", e.ID))
	case events.TaskUpdated:
		// As in State.Apply: a terminal task leaves the state.
		if e.Task.State.Failed() { // the app's last failure (events.State.AppFailures)
			return both(del(s.taskPath(e.Task.ID)))(put(s.recordPath("failures", e.Task.AppID),
				events.TaskFailure{Task: *e.Task, Timestamp: e.Time}))
		}
		if e.Task.State.Terminal() {
			return del(s.taskPath(e.Task.ID))
		}
		return put(s.taskPath(e.Task.ID), e.Task)
	case events.TaskRemoved:
		return del(s.taskPath(e.ID))
	case events.LeaderChanged:
		data, err := json.Marshal(e.Leader)
		if err != nil {
			return nil, nil, 0, err
		}
		return []any{&zk.SetDataRequest{Path: s.leaderPath(), Data: data, Version: -1}}, nil,
			zkOpOverhead + len(s.leaderPath()) + len(data), nil
	default:
		return nil, nil, 0, fmt.Errorf("not a state change")
	}
}

// both joins the record ops of two records into one event's.
func both(ops []any, marks []zkMark, size int, err error) func([]any, []zkMark, int, error) ([]any, []zkMark, int, error) {
	return func(ops2 []any, marks2 []zkMark, size2 int, err2 error) ([]any, []zkMark, int, error) {
		if err != nil {
			return nil, nil, 0, err
		}
		if err2 != nil {
			return nil, nil, 0, err2
		}
		return append(ops, ops2...), append(marks, marks2...), size + size2, nil
	}
}

package master

import (
	"encoding/json"
	"fmt"
	"strconv"

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

// zkMark says that the record at base is now the znode name, or none
// ("").
type zkMark struct {
	base, name string
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
	done := 0
	for i, m := range multis {
		if s.beforeMulti != nil {
			s.beforeMulti(i)
		}
		s.multis++
		part := spanOf(evs[done : done+m.events])
		res, err := s.conn.Multi(m.ops...)
		switch {
		case err == nil:
			for _, mk := range m.marks {
				if mk.name != "" {
					s.names[mk.base] = mk.name
				} else {
					delete(s.names, mk.base)
				}
				s.sinceCache++
			}
			done += m.events
			continue
		case len(res) > 0 && res[0].Error != nil:
			// Op 0 is the fence check: a newer leader bumped leader_epoch.
			s.fail(fmt.Errorf("leader_epoch moved on: %w", ErrFenced))
			return done, fmt.Errorf("zk store: append %s: %w", part, s.broken)
		case len(res) == 0:
			// No reply: the Multi may or may not have happened, so what we
			// know of the store is no longer certain.
			s.fail(fmt.Errorf("write outcome unknown: %w", err))
			return done, fmt.Errorf("zk store: append %s: %w", part, s.broken)
		default:
			// ZooKeeper refused one record op; this Multi changed nothing.
			return done, fmt.Errorf("zk store: append %s: %s: %w", part, refusedOp(m.ops, res), err)
		}
	}
	s.maybeRefreshCache(nil)
	return done, nil
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
		cur.ops = append([]any{
			&zk.CheckVersionRequest{Path: s.epochPath(), Version: s.fence},
			&zk.SetDataRequest{Path: s.counterPath(), Data: cdata, Version: -1},
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
		name := base + "@" + strconv.FormatUint(e.Seq, 10)
		ops := []any{&zk.CreateRequest{Path: name, Data: data, Acl: s.cfg.ACL}}
		size := zkOpOverhead + len(name) + len(data) + aclSize
		if cur := current(base); cur != "" {
			ops = append([]any{&zk.DeleteRequest{Path: cur, Version: -1}}, ops...)
			size += zkOpOverhead + len(cur)
		}
		return ops, []zkMark{{base, name}}, size, nil
	}
	del := func(base string) ([]any, []zkMark, int, error) {
		cur := current(base)
		if cur == "" {
			return nil, nil, 0, nil
		}
		return []any{&zk.DeleteRequest{Path: cur, Version: -1}}, []zkMark{{base, ""}}, zkOpOverhead + len(cur), nil
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

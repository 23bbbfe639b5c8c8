package dnsserver

import (
	"slices"

	"github.com/atollhq/atoll/events"
)

// BuildZone builds the zone of state s from scratch (a snapshot).
func BuildZone(s *events.State, cfg Config) *Zone {
	c := newZoneConfig(cfg)
	b := (&Zone{cfg: c}).edit(s)
	b.setOwner(owner{kind: ownerStatic}, nil, staticRecords(c)) // never changes
	b.leader = b.setOwner(owner{kind: ownerLeader}, nil, leaderRecords(c, s.Leader))
	for _, a := range s.SortedAgents() {
		b.agent(a.ID)
	}
	byApp := map[string][]string{}
	for id, t := range s.Tasks {
		byApp[t.AppID] = append(byApp[t.AppID], id)
	}
	for appID, ids := range byApp {
		slices.Sort(ids)
		b.app(appID, slices.Clone(ids)) // the zone keeps it: no spare capacity
	}
	return b.done()
}

// Apply returns the zone after event e, which s already includes (as
// events.Handler.Applied delivers them). z is unchanged; the new zone shares
// every name, app and agent the event does not touch.
func (z *Zone) Apply(s *events.State, e events.Event) *Zone {
	b := z.edit(s)
	switch e.Type {
	case events.TaskUpdated:
		if e.Task != nil {
			b.task(e.Task.ID)
		}
	case events.TaskRemoved:
		b.task(e.ID)
	case events.AppUpdated:
		if e.App != nil {
			b.appChanged(e.App.ID)
		}
	case events.AppRemoved:
		b.appChanged(e.ID)
	case events.AgentUpdated:
		if e.Agent != nil {
			b.agentChanged(e.Agent.ID)
		}
	case events.AgentRemoved:
		b.agentChanged(e.ID)
	case events.LeaderChanged:
		b.leader = b.setOwner(owner{kind: ownerLeader}, b.leader, leaderRecords(b.cfg, s.Leader))
	}
	// Deployments change nothing in DNS: only the serial moves.
	return b.done()
}

// zoneEdit builds the next zone from a previous one.
type zoneEdit struct {
	tableEdit
	cfg        *zoneConfig
	s          *events.State
	apps       *cowEdit[*appEntry]
	hashes     *cowEdit[appSet]
	agents     *cowEdit[*agentEntry]
	leader     []string
	agentNames agentNames
}

func (z *Zone) edit(s *events.State) *zoneEdit {
	agents := z.agents.edit()
	return &zoneEdit{
		tableEdit:  tableEdit{names: z.names.edit(), origin: z.cfg.origin, count: z.count},
		cfg:        z.cfg,
		s:          s,
		apps:       z.apps.edit(),
		hashes:     z.hashes.edit(),
		agents:     agents,
		leader:     z.leader,
		agentNames: agentNames{c: z.cfg, agents: agents, names: map[string]string{}},
	}
}

func (b *zoneEdit) done() *Zone {
	serial := uint32(b.s.Seq) // the low 32 bits; RFC 1982 arithmetic wraps
	return &Zone{
		cfg:    b.cfg,
		serial: serial,
		soa:    newSOA(b.cfg, serial),
		names:  b.names.done(),
		count:  b.count,
		apps:   b.apps.done(),
		hashes: b.hashes.done(),
		agents: b.agents.done(),
		leader: b.leader,
	}
}

// setOwner replaces o's records: old are the names it had, fresh what it
// has now. It returns the names it has now.
func (b *zoneEdit) setOwner(o owner, old []string, fresh []nameRecs) []string {
	names := make([]string, 0, len(fresh))
	// The data of o's names by their records (recSet.sorted gives equal
	// sets one slice), for names whose answers pack alike to share.
	type named struct {
		name string
		d    *nodeData
	}
	var shared map[*rec][]named
	for _, nr := range fresh {
		var share *nodeData
		if len(nr.recs) > 0 {
			for _, c := range shared[&nr.recs[0]] {
				if packsAlike(c.name, nr.name, nr.recs) {
					share = c.d
					break
				}
			}
		}
		name, d := b.setPart(nr.name, o, nr.recs, share)
		names = append(names, name)
		if share == nil && d != nil && len(nr.recs) > 0 {
			if shared == nil {
				shared = map[*rec][]named{}
			}
			shared[&nr.recs[0]] = append(shared[&nr.recs[0]], named{name, d})
		}
	}
	for _, name := range old {
		if _, still := slices.BinarySearch(names, name); !still {
			b.setPart(name, o, nil, nil)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return names
}

// task follows one task into or out of its app.
func (b *zoneEdit) task(id string) {
	oldApp, had := b.appOf(id)
	t, has := b.s.Tasks[id]
	if had && (!has || t.AppID != oldApp) {
		b.app(oldApp, remove(b.appTasks(oldApp), id))
	}
	if !has {
		return
	}
	ids := b.appTasks(t.AppID)
	if !had || t.AppID != oldApp {
		ids = insert(ids, id)
	}
	b.app(t.AppID, ids)
}

// appOf is the app whose tasks the zone holds task id in, found through
// the index of task hashes (canon.go).
func (b *zoneEdit) appOf(id string) (string, bool) {
	h := taskHashBytes(id)
	apps, _ := b.hashes.get(string(h[:]))
	for off := 0; off < len(apps); {
		var appID string
		appID, off = apps.at(off)
		if e, ok := b.apps.get(appID); ok {
			if _, found := slices.BinarySearch(e.tasks, id); found {
				return appID, true
			}
		}
	}
	return "", false
}

// appChanged recomputes an app after its definition changed or went away;
// its tasks stay until their own events remove them.
func (b *zoneEdit) appChanged(appID string) {
	b.app(appID, b.appTasks(appID))
}

// agentChanged recomputes an agent, and every app with a task on it when
// what decides those tasks' records changed: whether the agent is active,
// its address, its name. Resources and attributes change nothing here.
func (b *zoneEdit) agentChanged(agentID string) {
	old, _ := b.agents.get(agentID)
	if now := b.agent(agentID); old != nil && now == old.view || old == nil && now == (agentView{}) {
		return
	}
	var apps []string
	for _, t := range b.s.Tasks {
		if t.AgentID == agentID {
			apps = append(apps, t.AppID)
		}
	}
	slices.Sort(apps)
	for _, appID := range slices.Compact(apps) {
		b.appChanged(appID)
	}
}

// agent recomputes an agent's own records and returns its view.
func (b *zoneEdit) agent(agentID string) agentView {
	var a *events.Agent
	var view agentView
	if v, ok := b.s.Agents[agentID]; ok {
		a = &v
		if v.State == events.AgentActive {
			view = agentView{active: true, ip: v.IP, name: b.agentNames.get(a)}
		}
	}
	var old []string
	tail := ""
	if e, ok := b.agents.get(agentID); ok {
		old, tail = e.names, e.tail
	}
	if tail == "" {
		tail = agentIDTail(agentID)
	}
	names := b.setOwner(owner{kind: ownerAgent, id: agentID}, old, agentRecords(b.cfg, &b.agentNames, a))
	if names == nil && view == (agentView{}) {
		b.agents.del(agentID)
	} else {
		b.agents.set(agentID, &agentEntry{names: names, view: view, tail: tail})
	}
	return view
}

// app recomputes an app whose tasks are now ids (sorted).
func (b *zoneEdit) app(appID string, ids []string) {
	old := &appEntry{}
	if e, ok := b.apps.get(appID); ok {
		old = e
	}
	hashes := taskHashes(ids)
	recs, task, canon := appRecords(b.cfg, b.s, appID, ids, hashes, b.agentTail)
	names := b.setOwner(owner{kind: ownerApp, id: appID}, appendStandard(b.cfg, old.extra, old.task), recs)
	b.count += canonCount(b.cfg, task, canon) - canonCount(b.cfg, old.task, old.canon)
	distinct := distinctHashes(hashes)
	b.hashIndex(appID, old.hashes, distinct)
	if len(ids) == 0 && len(names) == 0 {
		b.apps.del(appID)
		return
	}
	standard := appendStandard(b.cfg, nil, task)
	var extra []string
	for _, name := range names {
		if !slices.Contains(standard, name) {
			extra = append(extra, name)
		}
	}
	b.apps.set(appID, &appEntry{tasks: ids, extra: slices.Clip(extra), task: task, canon: canon, hashes: distinct})
}

// appendStandard appends the names of an app with task names task that
// every app has (formNames), whether or not they hold its records now.
func appendStandard(c *zoneConfig, names []string, task [2]string) []string {
	for _, t := range task {
		if t != "" {
			f := newFormNames(c, t)
			names = append(names, f.host, f.slave, f.tcp, f.tcpSlave, f.udpSlave)
		}
	}
	return names
}

// agentTail is agentIDTail of an agent's id, the zone's copy when it has
// one.
func (b *zoneEdit) agentTail(agentID string) string {
	if e, ok := b.agents.get(agentID); ok {
		return e.tail
	}
	return agentIDTail(agentID)
}

func (b *zoneEdit) appTasks(appID string) []string {
	if e, ok := b.apps.get(appID); ok {
		return e.tasks
	}
	return nil
}

// insert and remove return a new sorted slice; entries of older zones keep
// theirs.
func insert(ids []string, id string) []string {
	i, found := slices.BinarySearch(ids, id)
	if found {
		return ids
	}
	out := make([]string, 0, len(ids)+1)
	out = append(out, ids[:i]...)
	out = append(out, id)
	return append(out, ids[i:]...)
}

func remove(ids []string, id string) []string {
	i, found := slices.BinarySearch(ids, id)
	if !found {
		return ids
	}
	out := make([]string, 0, len(ids)-1)
	out = append(out, ids[:i]...)
	return append(out, ids[i+1:]...)
}

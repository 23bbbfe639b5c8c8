package dnsserver

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/atollhq/atoll/events"
	"github.com/miekg/dns"
)

// This file computes each owner's records from the state: pure functions of
// the records they read, so that an event needs to recompute only the owners
// that read what it changed:
//
//	static        the config alone
//	leader        State.Leader
//	agent <id>    that agent
//	app <id>      that app, its tasks, and the agents those tasks run on
//
// An agent event therefore recomputes the agent and every app with a task on
// it; a task event only its app.

// nameRecs is an owner's records at one name.
type nameRecs struct {
	name string
	recs []rec
}

// recSet collects an owner's records by name.
type recSet map[string][]rec

func (rs recSet) add(name string, r rec) {
	if validName(name) {
		rs[name] = append(rs[name], r)
	}
}

// sorted returns the records by name, each set normalized. Names whose
// sets are equal share one slice (an app whose tasks use their agents'
// addresses has the same A records at <task>.<fw> and <task>.<fw>.slave):
// the zone never changes a set in place.
func (rs recSet) sorted() []nameRecs {
	out := make([]nameRecs, 0, len(rs))
	seen := make(map[uint64][]rec, 8) // by hashRecs: the first set of each hash
	for name, recs := range rs {
		recs = normalizeRecs(recs)
		if len(rs) > 1 {
			h := hashRecs(recs)
			if prev, ok := seen[h]; !ok {
				seen[h] = recs
			} else if slices.Equal(prev, recs) {
				recs = prev
			}
		}
		out = append(out, nameRecs{name: name, recs: recs})
	}
	slices.SortFunc(out, func(a, b nameRecs) int { return strings.Compare(a.name, b.name) })
	return out
}

// staticRecords: the apex SOA and NS, and ns1, the name server's own name.
func staticRecords(c *zoneConfig) []nameRecs {
	rs := recSet{}
	rs.add(c.origin, rec{typ: dns.TypeSOA})
	rs.add(c.origin, targetRec(dns.TypeNS, 0, c.ns1, []netip.Addr{c.ns1Addr}))
	rs.add(c.ns1, addrRec(c.ns1Addr))
	return rs.sorted()
}

// leaderRecords: the leading master under every name Mesos-DNS gives the
// masters; atoll knows only the leader, so master. and master0. are it. The
// framework (Marathon's API) runs in the leader, so <fw>.<domain> is it too.
func leaderRecords(c *zoneConfig, l *events.Leader) []nameRecs {
	if l == nil {
		return nil
	}
	ip, ok := parseIP(l.IP)
	if !ok {
		return nil
	}
	rs := recSet{}
	leader := "leader." + c.origin
	for _, name := range []string{leader, "master." + c.origin, "master0." + c.origin, c.fwOrigin} {
		rs.add(name, addrRec(ip))
	}
	if l.Port > 0 && l.Port <= 0xffff {
		srv := targetRec(dns.TypeSRV, uint16(l.Port), leader, []netip.Addr{ip})
		rs.add("_leader._tcp."+c.origin, srv)
		rs.add("_leader._udp."+c.origin, srv)
		// Mesos-DNS's frameworkRecords: the scheduler's pid, which atoll's
		// /master/state gives as the leader's API address.
		rs.add("_framework._tcp."+c.fwOrigin, targetRec(dns.TypeSRV, uint16(l.Port), c.fwOrigin, []netip.Addr{ip}))
	}
	return rs.sorted()
}

// mesosAgentPort is the port of the agents' pids in atoll's /master/state
// (master/http_mesos.go, agentPort), which Mesos-DNS puts in _slave._tcp.
// atoll agents listen on no port; see MESOS_DNS_NAMES.md.
const mesosAgentPort = 5051

// agentName is an agent's own name, <hostname>.slave.<domain>, and what
// its address's PTR record points to.
func agentName(c *zoneConfig, a *events.Agent) string {
	return agentLabel(a.Hostname, a.ID) + "." + c.slaveOrigin
}

// agentNames memoizes agent names during one edit of the zone (the state
// does not change meanwhile), and hands out the string the zone already
// holds for a name, so that an agent's records share one copy.
type agentNames struct {
	c      *zoneConfig
	agents *cowEdit[*agentEntry] // the zone's agents, for their names
	names  map[string]string
}

func (n *agentNames) get(a *events.Agent) string {
	name, ok := n.names[a.ID]
	if !ok {
		name = agentName(n.c, a)
		if e, ok := n.agents.get(a.ID); ok && e.view.name == name {
			name = e.view.name
		}
		n.names[a.ID] = name
	}
	return name
}

// agentRecords: an active agent is one of slave.<domain>, has its own name,
// and its address points back to that name.
func agentRecords(c *zoneConfig, names *agentNames, a *events.Agent) []nameRecs {
	if a == nil || a.State != events.AgentActive {
		return nil
	}
	ip, ok := parseIP(a.IP)
	if !ok {
		return nil
	}
	rs := recSet{}
	name := names.get(a)
	rs.add("slave."+c.origin, addrRec(ip))
	// Mesos-DNS's slaveRecords: slave.<domain> at the port of the agent's
	// pid. Every agent adds the same record, so the set holds one, as
	// Mesos-DNS's; without an address for ADDITIONAL, since the agents'
	// differ (slave.<domain> is a query away).
	rs.add("_slave._tcp."+c.origin, rec{typ: dns.TypeSRV, port: mesosAgentPort, target: "slave." + c.origin})
	rs.add(name, addrRec(ip))
	if validName(name) {
		rs.add(reverseName(ip), rec{typ: dns.TypePTR, target: name})
	}
	return rs.sorted()
}

// appRecords: the names of an app's serving tasks. taskIDs are all the
// app's tasks in the state; those that are not running on an active agent,
// or not healthy when the app has health checks, are left out. A task of an
// app that is no longer in the state is being killed and is left out too.
//
// Mesos-DNS reads a Marathon task twice (records/generator.go, taskRecord):
// under its discovery name as Marathon sets it, the app id's segments
// reversed ("/shop/web" -> "web.shop"), and under that name made one RFC 1123
// label ("web-shop"). An app at the root has one name. See MESOS_DNS_NAMES.md.
//
// The canonical names of the serving tasks are not among the records: task
// is the app's task names (dashed, then dotted or ""), canon what those
// names answer (canon.go), sorted by hash.
//
// hashes are the hashes of taskIDs, in their order; tail gives an agent
// id's tail.
func appRecords(c *zoneConfig, s *events.State, appID string, taskIDs []string, hashes [][5]byte, tail func(agentID string) string) (recs []nameRecs, task [2]string, canon []canonTask) {
	app, ok := s.Apps[appID]
	if !ok {
		return nil, task, nil
	}
	dotted := taskName(appID)
	if dotted == "" {
		return nil, task, nil
	}
	task[0] = sanitizeLabel(dotted)
	if dotted != task[0] {
		task[1] = dotted
	}
	var (
		rs      = recSet{}
		checked = len(app.HealthChecks) > 0
		forms   [2]formNames
	)
	for i, name := range task {
		if name != "" {
			forms[i] = newFormNames(c, name)
		}
	}
	for i, id := range taskIDs {
		t, ok := s.Tasks[id]
		if !ok || t.State != events.TaskRunning || (checked && (t.Healthy == nil || !*t.Healthy)) {
			continue
		}
		agent, ok := s.Agents[t.AgentID]
		if !ok || agent.State != events.AgentActive {
			continue
		}
		agentIP, agentOK := parseIP(agent.IP)
		addrs := taskAddrs(t.IPAddresses)
		if len(addrs) == 0 && agentOK {
			addrs = []netip.Addr{agentIP}
		}
		if len(addrs) == 0 {
			continue // nowhere to send anyone
		}
		var agentAddrs []netip.Addr
		if agentOK {
			agentAddrs = []netip.Addr{agentIP}
		}
		ct := newCanonTask(hashes[i], tail(t.AgentID), addrs, agentAddrs)
		canon = append(canon, ct)
		suffix := ""
		for k, name := range task {
			if name != "" {
				taskRecords(c, rs, &app, &t, name, &forms[k], &ct, &suffix, addrs, agentAddrs)
			}
		}
		// The task's own addresses point back to its name; the agent's
		// address points back to the agent, not to the hundreds of tasks
		// that may share it.
		for _, a := range addrs {
			if !agentOK || a != agentIP {
				rs.add(reverseName(a), rec{typ: dns.TypePTR, target: task[0] + "." + c.fwOrigin})
			}
		}
	}
	slices.SortFunc(canon, compareCanon)
	return rs.sorted(), task, slices.Clip(canon)
}

// taskRecords adds the records of one task under one of its names, as
// Mesos-DNS's taskContextRecord for a task with discovery info (Marathon
// gives every task one; its ports are the app's port definitions):
//
//	<task>.<fw>.<domain>, <canonical>.<fw>.<domain>              A: addrs
//	<task>.<fw>.slave.<domain>, <canonical>.<fw>.slave.<domain>  A: the agent's
//	_<task>._tcp.<fw>.slave.<domain> and _udp                    SRV -> <canonical>.<fw>.slave.<domain>, every port
//	_<task>._<proto>.<fw>.<domain>                               SRV -> <canonical>.<fw>.<domain>, per port and protocol
//	_<port name>._<task>._<proto>.<fw>.<domain>                  the same, for named ports
//
// where <canonical> is <task>-<hash of the task id>-<agent id tail>. A
// bridged app's SRV records all lead to <canonical>.<fw>.slave.<domain>:
// its ports (its port mappings) are host ports on the agent. The
// canonical names' A records are left to canon.go unless the canonical
// label was shortened. agentAddrs is the agent's address, or none when it
// has no usable one.
func taskRecords(c *zoneConfig, rs recSet, app *events.App, t *events.Task, task string, f *formNames, ct *canonTask, suffix *string, addrs, agentAddrs []netip.Addr) {
	canonical := canonicalFrom(task, ct.hash, ct.tail)
	var (
		host       = f.host
		canon      = canonical + "." + c.fwOrigin
		slave      = f.slave
		canonSlave = canonical + "." + c.fwSlave
		stored     = canonicalShortened(task, ct.tail)
	)
	for _, a := range addrs {
		rs.add(host, addrRec(a))
		if stored {
			rs.add(canon, addrRec(a))
		}
	}
	for _, a := range agentAddrs {
		rs.add(slave, addrRec(a))
		if stored {
			rs.add(canonSlave, addrRec(a))
		}
	}
	// SRV records to the canonical names; *suffix is the task's
	// "-<hash>-<tail>", shared by its name forms.
	canonSRV := func(port uint16, addrs []netip.Addr) rec {
		if stored {
			return relativeSRV(port, canonical, addrs)
		}
		if *suffix == "" {
			*suffix = strings.Clone(canonical[len(task):]) // not the whole label
		}
		return taskRelativeSRV(port, *suffix, addrs)
	}
	canonOK, canonSlaveOK := validName(canon), len(agentAddrs) > 0 && validName(canonSlave)
	// A bridged task's ports are its agent's (host ports leading into its
	// container), while its own address is on the agent's bridge: its
	// SRV records lead to the agent's canonical name, as marathon-lb and
	// Mesos-DNS's host-scoped ports do.
	bridged := app.Bridged()
	if bridged && !canonSlaveOK {
		return
	}
	specs := app.PortSpecs()
	for i, port := range t.Ports {
		if port <= 0 || port > 0xffff {
			continue
		}
		if canonSlaveOK {
			srv := canonSRV(uint16(port), agentAddrs)
			rs.add(f.tcpSlave, srv)
			rs.add(f.udpSlave, srv)
		}
		var srv rec
		switch {
		case bridged:
			srv = targetRec(dns.TypeSRV, uint16(port), canonSlave, agentAddrs)
		case canonOK:
			srv = canonSRV(uint16(port), addrs)
		default:
			continue
		}
		tcp, udp := portProtocols(specs, i)
		portName := ""
		if i < len(specs) {
			portName = sanitizeLabel(specs[i].Name)
		}
		for _, proto := range [...]struct {
			on    bool
			label string
		}{{tcp, "._tcp."}, {udp, "._udp."}} {
			if !proto.on {
				continue
			}
			name := f.tcp
			if proto.label == "._udp." {
				name = "_" + task + proto.label + c.fwOrigin
			}
			rs.add(name, srv)
			if portName != "" {
				rs.add("_"+portName+"."+name, srv)
			}
		}
	}
}

// formNames are the names of an app's tasks in one form (dashed or
// dotted) that every task has, in one allocation: 5 names per form and app
// are the most of the zone's names.
type formNames struct {
	host, slave, tcp, tcpSlave, udpSlave string
}

func newFormNames(c *zoneConfig, task string) formNames {
	srv := "_" + task
	all := task + "." + c.fwOrigin + task + "." + c.fwSlave +
		srv + "._tcp." + c.fwOrigin + srv + "._tcp." + c.fwSlave + srv + "._udp." + c.fwSlave
	off := 0
	take := func(n int) string {
		s := all[off : off+n]
		off += n
		return s
	}
	var f formNames
	f.host = take(len(task) + 1 + len(c.fwOrigin))
	f.slave = take(len(task) + 1 + len(c.fwSlave))
	f.tcp = take(len(srv) + len("._tcp.") + len(c.fwOrigin))
	f.tcpSlave = take(len(srv) + len("._tcp.") + len(c.fwSlave))
	f.udpSlave = take(len(srv) + len("._udp.") + len(c.fwSlave))
	return f
}

// taskAddrs picks the first IPv4 and the first IPv6 address of a task, as
// Mesos-DNS does.
func taskAddrs(ips []events.IPAddress) []netip.Addr {
	var v4, v6 netip.Addr
	for _, ip := range ips {
		a, ok := parseIP(ip.IPAddress)
		switch {
		case !ok:
		case a.Is4() && !v4.IsValid():
			v4 = a
		case a.Is6() && !v6.IsValid():
			v6 = a
		}
	}
	var out []netip.Addr
	for _, a := range []netip.Addr{v4, v6} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out
}

// portProtocols reads the protocols of the i-th port from the app's port
// definitions: "tcp" (the default), "udp", or both ("udp,tcp").
func portProtocols(defs []events.PortDefinition, i int) (tcp, udp bool) {
	if i >= len(defs) || defs[i].Protocol == "" {
		return true, false
	}
	for p := range strings.SplitSeq(strings.ToLower(defs[i].Protocol), ",") {
		switch strings.TrimSpace(p) {
		case "tcp":
			tcp = true
		case "udp":
			udp = true
		}
	}
	if !tcp && !udp {
		tcp = true // an unknown protocol: Marathon's default
	}
	return tcp, udp
}

package master

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/atollhq/atoll/events"
)

// /master/state: the cluster in the shape of Mesos's master state, for
// tools that read Mesos (Mesos-DNS, dashboards, the CLI's agent list).

// agentPort is the port Mesos agents listen on; atoll agents listen on
// none, but Mesos pids need one.
const agentPort = 5051

type mesosResources struct {
	Cpus  float64 `json:"cpus"`
	Mem   float64 `json:"mem"`
	Disk  float64 `json:"disk"`
	Gpus  float64 `json:"gpus"`
	Ports string  `json:"ports,omitempty"`
}

type mesosSlave struct {
	ID                  string            `json:"id"`
	PID                 string            `json:"pid"`
	Hostname            string            `json:"hostname"`
	Port                int               `json:"port"`
	RegisteredTime      float64           `json:"registered_time"`
	Resources           mesosResources    `json:"resources"`
	UsedResources       mesosResources    `json:"used_resources"`
	OfferedResources    mesosResources    `json:"offered_resources"`
	ReservedResources   map[string]any    `json:"reserved_resources"`
	UnreservedResources mesosResources    `json:"unreserved_resources"`
	Attributes          map[string]string `json:"attributes"`
	Active              bool              `json:"active"`
	Version             string            `json:"version"`
	// LastHeartbeat is atoll's own (Mesos has none here): when the leader
	// last heard from the agent, in Unix seconds as registered_time; 0
	// when this master has not heard from it (a new leader, a standby).
	LastHeartbeat float64 `json:"last_heartbeat"`
	// Usage is atoll's own too: what the agent's tasks use (from their
	// cgroups), next to used_resources (what they were allocated);
	// absent until the agent reports it.
	Usage *slaveUsage `json:"usage,omitempty"`
}

type mesosFramework struct {
	ID               string         `json:"id"`
	Name             string         `json:"name"`
	PID              string         `json:"pid"`
	Hostname         string         `json:"hostname"`
	WebUIURL         string         `json:"webui_url"`
	User             string         `json:"user"`
	Role             string         `json:"role"`
	Active           bool           `json:"active"`
	Connected        bool           `json:"connected"`
	Resources        mesosResources `json:"resources"`
	UsedResources    mesosResources `json:"used_resources"`
	OfferedResources mesosResources `json:"offered_resources"`
	Tasks            []mesosTask    `json:"tasks"`
	CompletedTasks   []mesosTask    `json:"completed_tasks"`
}

type mesosLeaderInfo struct {
	ID       string       `json:"id"`
	PID      string       `json:"pid"`
	IP       uint32       `json:"ip"`
	Port     int          `json:"port"`
	Hostname string       `json:"hostname"`
	Version  string       `json:"version"`
	Address  mesosAddress `json:"address"`
}

type mesosAddress struct {
	Hostname string `json:"hostname"`
	IP       string `json:"ip"`
	Port     int    `json:"port"`
}

type mesosState struct {
	Version           string           `json:"version"`
	ID                string           `json:"id"`
	PID               string           `json:"pid"`
	Hostname          string           `json:"hostname"`
	Leader            string           `json:"leader,omitempty"`
	LeaderInfo        *mesosLeaderInfo `json:"leader_info,omitempty"`
	ActivatedSlaves   int              `json:"activated_slaves"`
	DeactivatedSlaves int              `json:"deactivated_slaves"`
	Slaves            []mesosSlave     `json:"slaves"`
	Frameworks        []mesosFramework `json:"frameworks"`
	// Mesos lists these too; atoll keeps no history of them.
	CompletedFrameworks []mesosFramework `json:"completed_frameworks"`
	OrphanTasks         []mesosTask      `json:"orphan_tasks"`
	// Masters is atoll's own: every master, the leader first (Masters).
	Masters []MasterEntry `json:"masters"`
}

// getMesosState is GET /master/state (and its .json aliases).
func (m *Master) getMesosState(w http.ResponseWriter, _ *http.Request) {
	// Under the lock only what is small: the agents, when each was last
	// heard from, and the leader. Tasks and apps come from the read view,
	// which takes no lock: 100,000 tasks are rendered without holding up
	// a write.
	var in mesosInputs
	m.View(func(s *events.State) {
		in.leader = s.Leader
		in.agents = s.SortedAgents()
		in.lastHeard = make([]time.Time, len(in.agents))
		in.usage = make([]*slaveUsage, len(in.agents))
		for i, a := range in.agents {
			// runtime is guarded by m.mu, which View holds.
			in.lastHeard[i] = m.live.lastHeard(a.ID)
			if u, ok := m.live.usage(a.ID); ok {
				in.usage[i] = slaveUsageOf(u)
			}
		}
	})
	in.view = m.reads.load()
	st, tasks := m.mesosStateOf(in)
	st.Masters = m.Masters() // not under m.mu: Masters takes it itself
	writeMesosState(w, st, tasks)
}

// writeMesosState writes st with the framework's tasks streamed in one by
// one: at 100,000 tasks the answer is 56 MB, and json.Marshal of the whole
// would grow a buffer that size (and keep it in its pool).
func writeMesosState(w http.ResponseWriter, st mesosState, tasks []mesosTask) {
	st.Frameworks[0].Tasks = []mesosTask{}
	head, err := json.Marshal(st)
	// "tasks":[] is the framework's alone: other lists are named
	// completed_tasks and orphan_tasks, and agents carry none.
	at := bytes.Index(head, []byte(`"tasks":[]`))
	if err != nil || at < 0 || bytes.Count(head, []byte(`"tasks":[]`)) != 1 {
		st.Frameworks[0].Tasks = tasks
		writeJSON(w, http.StatusOK, st)
		return
	}
	at += len(`"tasks":[`)
	a := startJSON(w, http.StatusOK, len(head)+len(tasks)*512)
	a.Write(head[:at])
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range tasks {
		buf.Reset()
		if err := enc.Encode(tasks[i]); err != nil {
			continue // a task view has nothing that does not encode
		}
		if i > 0 {
			a.WriteByte(',')
		}
		a.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}
	a.Write(head[at:])
	a.end()
}

// mesosInputs is what /master/state is made of.
type mesosInputs struct {
	leader    *events.Leader
	agents    []events.Agent // by id
	lastHeard []time.Time    // per agent
	usage     []*slaveUsage  // per agent; nil if unknown (or not asked)
	view      *readView      // apps and tasks
}

// mesosStateOf renders the state. Agents that are gone are left out, as
// Mesos leaves out removed agents; unreachable ones are listed inactive.
func (m *Master) mesosStateOf(in mesosInputs) (mesosState, []mesosTask) {
	ip, port := m.advertised()
	self := "master@" + net.JoinHostPort(ip, strconv.Itoa(port))
	st := mesosState{
		Version: m.cfg.Version, ID: m.cfg.ID, PID: self, Hostname: m.cfg.Hostname,
		Slaves: []mesosSlave{}, CompletedFrameworks: []mesosFramework{}, OrphanTasks: []mesosTask{},
	}
	fwHost, fwAddr := m.cfg.Hostname, net.JoinHostPort(ip, strconv.Itoa(port))
	if l := in.leader; l != nil && l.IP != "" {
		addr := net.JoinHostPort(l.IP, strconv.Itoa(l.Port))
		st.Leader = "master@" + addr
		st.LeaderInfo = &mesosLeaderInfo{
			ID: l.ID, PID: st.Leader, IP: mesosIP(l.IP), Port: l.Port, Hostname: l.Hostname,
			Version: m.cfg.Version, Address: mesosAddress{Hostname: l.Hostname, IP: l.IP, Port: l.Port},
		}
		fwHost, fwAddr = l.Hostname, addr
	}

	fw := mesosFramework{
		ID: frameworkID, Name: frameworkName, Hostname: fwHost,
		PID: "scheduler-" + frameworkID + "@" + fwAddr, WebUIURL: m.scheme() + "://" + fwAddr,
		User: "root", Role: "*", Active: true, Connected: true,
		Tasks: []mesosTask{}, CompletedTasks: []mesosTask{},
	}
	var all []*events.Task
	var fwUsed resourceSum
	used := map[string]*resourceSum{} // active tasks' resources per agent
	for _, e := range in.view.apps {
		for i := range e.tasks.tasks {
			t := &e.tasks.tasks[i]
			all = append(all, t)
			if !t.State.Active() {
				continue
			}
			fwUsed.add(t)
			u := used[t.AgentID]
			if u == nil {
				u = &resourceSum{}
				used[t.AgentID] = u
			}
			u.add(t)
		}
	}

	for i, a := range in.agents {
		if a.State == events.AgentGone {
			continue
		}
		active := a.State == events.AgentActive
		if active {
			st.ActivatedSlaves++
		} else {
			st.DeactivatedSlaves++
		}
		res := mesosResources{Cpus: a.Resources.Cpus, Mem: a.Resources.Mem, Disk: a.Resources.Disk,
			Ports: formatRanges(a.Resources.Ports)}
		attrs := a.Attributes
		if attrs == nil {
			attrs = map[string]string{}
		}
		var u mesosResources
		if s := used[a.ID]; s != nil {
			u = s.resources()
		}
		st.Slaves = append(st.Slaves, mesosSlave{
			ID: a.ID, PID: "slave(1)@" + net.JoinHostPort(a.IP, strconv.Itoa(agentPort)),
			Hostname: a.Hostname, Port: agentPort,
			RegisteredTime: unixSeconds(a.RegisteredAt),
			Resources:      res, UsedResources: u,
			ReservedResources: map[string]any{}, UnreservedResources: res,
			Attributes: attrs, Active: active, Version: m.cfg.Version,
			LastHeartbeat: unixSeconds(in.lastHeard[i]),
		})
		if i < len(in.usage) {
			st.Slaves[len(st.Slaves)-1].Usage = in.usage[i]
		}
	}

	slices.SortFunc(all, func(a, b *events.Task) int { return strings.Compare(a.ID, b.ID) })
	tasks := make([]mesosTask, 0, len(all))
	for _, t := range all {
		var app events.App
		if e, ok := in.view.find(t.AppID); ok && e.app != nil {
			app = *e.app
		}
		tasks = append(tasks, mesosTaskOf(*t, app))
	}
	fw.UsedResources = fwUsed.resources()
	fw.Resources = fw.UsedResources
	st.Frameworks = []mesosFramework{fw}
	return st, tasks
}

// resourceSum adds up tasks' resources; their ports are formatted once,
// at the end, not again for every task added.
type resourceSum struct {
	cpus, mem, disk float64
	ports           []events.PortRange
}

func (r *resourceSum) add(t *events.Task) {
	r.cpus += t.Cpus
	r.mem += t.Mem
	r.disk += t.Disk
	for _, p := range t.Ports {
		r.ports = append(r.ports, events.PortRange{Begin: p, End: p})
	}
}

func (r *resourceSum) resources() mesosResources {
	return mesosResources{Cpus: r.cpus, Mem: r.mem, Disk: r.disk, Ports: formatRanges(r.ports)}
}

// taskResources is one task's resources as Mesos shows them.
func taskResources(t events.Task) mesosResources {
	var r resourceSum
	r.add(&t)
	return r.resources()
}

// formatRanges prints port ranges as Mesos does, sorted and coalesced:
// "[31000-32000, 33000-33100]"; no ranges print as "".
func formatRanges(rs []events.PortRange) string {
	if len(rs) == 0 {
		return ""
	}
	sorted := append([]events.PortRange(nil), rs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Begin < sorted[j].Begin })
	merged := []events.PortRange{sorted[0]}
	for _, r := range sorted[1:] {
		last := &merged[len(merged)-1]
		if r.Begin <= last.End+1 {
			last.End = max(last.End, r.End)
			continue
		}
		merged = append(merged, r)
	}
	parts := make([]string, len(merged))
	for i, r := range merged {
		parts[i] = fmt.Sprintf("%d-%d", r.Begin, r.End)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// mesosIP is an IPv4 address as Mesos's MasterInfo.ip: the address bytes
// in network order read as a little-endian uint32 (127.0.0.1 -> 16777343).
func mesosIP(s string) uint32 {
	ip := net.ParseIP(s).To4()
	if ip == nil {
		return 0
	}
	return uint32(ip[0]) | uint32(ip[1])<<8 | uint32(ip[2])<<16 | uint32(ip[3])<<24
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

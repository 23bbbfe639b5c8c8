package master

import (
	"fmt"
	"net"
	"net/http"
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
	var st mesosState
	m.View(func(s *events.State) { st = m.mesosStateOf(s) })
	st.Masters = m.Masters() // not under m.mu: Masters takes it itself
	writeJSON(w, http.StatusOK, st)
}

// mesosStateOf renders s. Agents that are gone are left out, as Mesos
// leaves out removed agents; unreachable ones are listed inactive. It runs
// under m.mu (see View).
func (m *Master) mesosStateOf(s *events.State) mesosState {
	ip, port := m.advertised()
	self := "master@" + net.JoinHostPort(ip, strconv.Itoa(port))
	st := mesosState{
		Version: m.cfg.Version, ID: m.cfg.ID, PID: self, Hostname: m.cfg.Hostname,
		Slaves: []mesosSlave{}, CompletedFrameworks: []mesosFramework{}, OrphanTasks: []mesosTask{},
	}
	fwHost, fwAddr := m.cfg.Hostname, net.JoinHostPort(ip, strconv.Itoa(port))
	if l := s.Leader; l != nil && l.IP != "" {
		addr := net.JoinHostPort(l.IP, strconv.Itoa(l.Port))
		st.Leader = "master@" + addr
		st.LeaderInfo = &mesosLeaderInfo{
			ID: l.ID, PID: st.Leader, IP: mesosIP(l.IP), Port: l.Port, Hostname: l.Hostname,
			Version: m.cfg.Version, Address: mesosAddress{Hostname: l.Hostname, IP: l.IP, Port: l.Port},
		}
		fwHost, fwAddr = l.Hostname, addr
	}

	used := map[string][]events.Task{} // active tasks per agent
	for _, t := range s.Tasks {
		if t.State.Active() {
			used[t.AgentID] = append(used[t.AgentID], t)
		}
	}
	for _, a := range s.SortedAgents() {
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
		st.Slaves = append(st.Slaves, mesosSlave{
			ID: a.ID, PID: "slave(1)@" + net.JoinHostPort(a.IP, strconv.Itoa(agentPort)),
			Hostname: a.Hostname, Port: agentPort,
			RegisteredTime: unixSeconds(a.RegisteredAt),
			Resources:      res, UsedResources: sumResources(used[a.ID]),
			ReservedResources: map[string]any{}, UnreservedResources: res,
			Attributes: attrs, Active: active, Version: m.cfg.Version,
			// runtime is guarded by m.mu, which View holds.
			LastHeartbeat: unixSeconds(m.live.lastHeard(a.ID)),
		})
	}

	fw := mesosFramework{
		ID: frameworkID, Name: frameworkName, Hostname: fwHost,
		PID: "scheduler-" + frameworkID + "@" + fwAddr, WebUIURL: m.scheme() + "://" + fwAddr,
		User: "root", Role: "*", Active: true, Connected: true,
		Tasks: []mesosTask{}, CompletedTasks: []mesosTask{},
	}
	var all []events.Task
	for _, t := range s.Tasks {
		all = append(all, t)
		if t.State.Active() {
			fw.UsedResources = addResources(fw.UsedResources, t)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	for _, t := range all {
		fw.Tasks = append(fw.Tasks, mesosTaskOf(t, s.Apps[t.AppID]))
	}
	fw.Resources = fw.UsedResources
	st.Frameworks = []mesosFramework{fw}
	return st
}

func sumResources(tasks []events.Task) mesosResources {
	var r mesosResources
	for _, t := range tasks {
		r = addResources(r, t)
	}
	return r
}

// addResources adds a task's resources to r, ports included.
func addResources(r mesosResources, t events.Task) mesosResources {
	r.Cpus += t.Cpus
	r.Mem += t.Mem
	r.Disk += t.Disk
	ranges := parseRanges(r.Ports)
	for _, p := range t.Ports {
		ranges = append(ranges, events.PortRange{Begin: p, End: p})
	}
	r.Ports = formatRanges(ranges)
	return r
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

// parseRanges reads what formatRanges prints.
func parseRanges(s string) []events.PortRange {
	s = strings.Trim(s, "[]")
	if s == "" {
		return nil
	}
	var out []events.PortRange
	for _, part := range strings.Split(s, ",") {
		b, e, _ := strings.Cut(strings.TrimSpace(part), "-")
		begin, err1 := strconv.Atoi(b)
		end, err2 := strconv.Atoi(e)
		if err1 == nil && err2 == nil {
			out = append(out, events.PortRange{Begin: begin, End: end})
		}
	}
	return out
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

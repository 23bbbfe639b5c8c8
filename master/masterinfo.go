package master

import (
	"net"
	"strconv"
)

// MasterInfo is what a master publishes about itself in ZooKeeper, in the
// shape Mesos writes to <path>/json.info_<seq>, so that tools that find a
// Mesos leader (Mesos-DNS, mesos-go's detector) find an atoll leader too.
// Port and Address.Port are the HTTP API's port.
type MasterInfo struct {
	ID       string        `json:"id"`
	Hostname string        `json:"hostname"`
	Port     int           `json:"port"`
	PID      string        `json:"pid"` // "master@ip:port", as Mesos
	Address  MasterAddress `json:"address"`
	Version  string        `json:"version"`
}

// MasterAddress is MasterInfo.address.
type MasterAddress struct {
	Hostname string `json:"hostname"`
	IP       string `json:"ip"`
	Port     int    `json:"port"`
}

// HostPort is the API's "ip:port" ("hostname:port" without an ip).
func (i MasterInfo) HostPort() string {
	host := i.Address.IP
	if host == "" {
		host = i.Hostname
	}
	port := i.Address.Port
	if port == 0 {
		port = i.Port
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// selfInfo is this master's MasterInfo.
func (m *Master) selfInfo() MasterInfo {
	ip, port := m.advertised()
	return MasterInfo{
		ID: m.cfg.ID, Hostname: m.cfg.Hostname, Port: port,
		PID:     "master@" + net.JoinHostPort(ip, strconv.Itoa(port)),
		Address: MasterAddress{Hostname: m.cfg.Hostname, IP: ip, Port: port},
		Version: m.cfg.Version,
	}
}

package master

import (
	"net/http"

	"github.com/atollhq/atoll/master/scheduler"
)

// /v2/info and /v2/leader: who leads, and how this master is configured.

// frameworkID and frameworkName are what Marathon is to Mesos. atoll has no
// Mesos framework registration, so the id is fixed and the same on every
// master: tools join /v2/info with /master/state by it.
const (
	frameworkID   = "marathon"
	frameworkName = "marathon"
)

// leaderAddr is the leader's "ip:port", "" when none is known. It comes
// from the election, not the state: a standby's state is not kept current.
func (m *Master) leaderAddr() string {
	if l, ok := m.LeaderInfo(); ok {
		return l.HostPort()
	}
	return ""
}

// getInfo is GET /v2/info in Marathon's shape. The NATS URL stands where
// Marathon shows its Mesos master, with any password redacted.
func (m *Master) getInfo(w http.ResponseWriter, _ *http.Request) {
	var leader *string
	if addr := m.leaderAddr(); addr != "" {
		leader = &addr
	}
	_, port := m.advertised()
	natsURL := ""
	if m.cfg.NC != nil {
		natsURL = m.cfg.NC.ConnectedUrlRedacted()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name":        "atoll",
		"version":     m.cfg.Version,
		"buildref":    "",
		"elected":     m.Leading(),
		"leader":      leader,
		"frameworkId": frameworkID,
		"marathon_config": map[string]any{
			"master":                  natsURL,
			"framework_name":          frameworkName,
			"hostname":                m.cfg.Hostname,
			"local_port_min":          scheduler.ServicePortMin,
			"local_port_max":          scheduler.ServicePortMax,
			"executor":                "//cmd",
			"checkpoint":              true,
			"ha":                      false,
			"agent_timeout_ms":        m.cfg.AgentTimeout.Milliseconds(),
			"mesos_role":              nil,
			"webui_url":               nil,
			"http_credentials_needed": m.cfg.HTTPCredentials != "",
		},
		"zookeeper_config": map[string]any{},
		"http_config": map[string]any{
			"http_port":   port,
			"assets_path": nil,
		},
	})
}

// getLeader is GET /v2/leader: {"leader": "ip:port"}, 404 without one.
func (m *Master) getLeader(w http.ResponseWriter, _ *http.Request) {
	addr := m.leaderAddr()
	if addr == "" {
		writeMessage(w, http.StatusNotFound, "There is no leader")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"leader": addr})
}

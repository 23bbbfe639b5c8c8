package master

import (
	"net/http"
	"strings"

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

// getInfo is GET /v2/info in Marathon's shape (info.raml), filled in with
// what this master does: the NATS URL stands where Marathon shows its
// Mesos master, with any password redacted; settings atoll has no
// counterpart for are null rather than made up.
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
			"ha":                      m.cfg.ZK != nil,
			"agent_timeout_ms":        m.cfg.AgentTimeout.Milliseconds(),
			"mesos_role":              "*",
			"mesos_user":              nil, // each agent runs tasks as its --default-user
			"webui_url":               nil,
			"mesos_leader_ui_url":     nil,
			"features":                []string{},
			"task_launch_timeout":     m.cfg.TaskLaunchTimeout.Milliseconds(),
			"reconciliation_interval": reconcileEvery.Milliseconds(),
			"max_instances_per_app":   m.cfg.MaxInstancesPerApp,
			"http_credentials_needed": m.cfg.HTTPCredentials != "",
		},
		"zookeeper_config": m.zkInfo(),
		"http_config":      httpPorts(port, m.cfg.TLS != nil),
		"event_subscriber": nil, // /v2/events only: no HTTP callbacks
	})
}

// zkInfo is /v2/info's zookeeper_config: the election and state's
// ZooKeeper with its credentials masked, as Marathon shows them, and how
// many versions of an app are kept (zk_max_versions, which Marathon
// reports whatever its store).
func (m *Master) zkInfo() map[string]any {
	info := map[string]any{"zk_max_versions": m.cfg.MaxAppVersions}
	z := m.cfg.ZK
	if z == nil {
		info["zk"] = nil
		return info
	}
	auth := ""
	if z.Auth != "" {
		auth = "xxxxxxxx:xxxxxxxx@"
	}
	info["zk"] = "zk://" + auth + strings.Join(z.Servers, ",") + z.Path
	info["zk_hosts"] = strings.Join(z.Servers, ",")
	info["zk_path"] = z.Path
	info["zk_session_timeout"] = z.SessionTimeout.Milliseconds()
	info["zk_timeout"] = z.SessionTimeout.Milliseconds()
	return info
}

// httpPorts is /v2/info's http_config: the API's one port, HTTP or HTTPS.
func httpPorts(port int, tls bool) map[string]any {
	if tls {
		return map[string]any{"http_port": 0, "https_port": port, "assets_path": nil}
	}
	return map[string]any{"http_port": port, "https_port": 0, "assets_path": nil}
}

// deleteLeader is DELETE /v2/leader: the leader steps down and another
// master takes over (Marathon's LeaderResource.delete). Standbys forward
// it to the leader. A master without an election has nobody to hand
// over to, and says so rather than pretend.
func (m *Master) deleteLeader(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("backup") || q.Has("restore") {
		writeMessage(w, http.StatusBadRequest, "backup and restore are not supported: the state is in the master's store (see README)")
		return
	}
	if m.cfg.ZK == nil {
		writeMessage(w, http.StatusConflict, "this master runs without an election (no --zk): there is no other master to take over, so it does not step down")
		return
	}
	if !m.Leading() {
		writeMessage(w, http.StatusNotFound, "There is no leader")
		return
	}
	writeMessage(w, http.StatusOK, "Leadership abdicated")
	if f, ok := w.(http.Flusher); ok {
		f.Flush() // the answer goes out before the term ends
	}
	if !m.Abdicate() {
		m.log.Warn("DELETE /v2/leader: leadership ended before it could be abdicated")
		return
	}
	m.log.Info("abdicating: DELETE /v2/leader", "from", r.RemoteAddr)
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

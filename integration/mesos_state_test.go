package integration

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// mesosStateTask is the part of a /master/state task Mesos-DNS reads
// (its records/state package).
type mesosStateTask struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	FrameworkID string `json:"framework_id"`
	SlaveID     string `json:"slave_id"`
	Resources   struct {
		Ports string `json:"ports"`
	} `json:"resources"`
	Statuses []struct {
		State           string `json:"state"`
		ContainerStatus struct {
			NetworkInfos []struct {
				IPAddresses []struct {
					IPAddress string `json:"ip_address"`
				} `json:"ip_addresses"`
			} `json:"network_infos"`
		} `json:"container_status"`
	} `json:"statuses"`
	Discovery *struct {
		Visibility string `json:"visibility"`
		Name       string `json:"name"`
		Ports      struct {
			Ports []struct {
				Number   int    `json:"number"`
				Name     string `json:"name"`
				Protocol string `json:"protocol"`
			} `json:"ports"`
		} `json:"ports"`
	} `json:"discovery"`
}

// mesosApp is an app and the Mesos task name and discovery ports
// Marathon gives its tasks.
type mesosApp struct {
	id, name string
	n        int
	defs     []map[string]any
	ports    []string // per Mesos port: "<index of the host port> <name> <protocol>"
}

// TestMesosStateHasDiscoveryOnEveryTask: /master/state of a running
// cluster has, on every task, the discovery Marathon sets (name from the
// app id, the app's ports with the task's host ports) and the agent's
// address in its status, as Mesos-DNS reads them.
func TestMesosStateHasDiscoveryOnEveryTask(t *testing.T) {
	c := startCluster(t, clusterOptions{agents: 2})
	apps := []mesosApp{
		{"/shop/web", "web.shop", 2, []map[string]any{{"port": 0, "name": "http"}, {"port": 0, "name": "dns", "protocol": "udp"}},
			[]string{"0 http tcp", "1 dns udp"}},
		{"/db", "db", 1, []map[string]any{{"port": 0}}, []string{"0  tcp"}},
		{"/a/b/c/svc", "svc.c.b.a", 1, []map[string]any{{"port": 0, "name": "rpc"}}, []string{"0 rpc tcp"}},
	}
	for _, a := range apps {
		c.mustDo("POST", "/v2/apps", map[string]any{
			"id": a.id, "cmd": "sleep 600", "instances": a.n, "cpus": 0.1, "mem": 16, "portDefinitions": a.defs,
		}, 201, nil)
	}
	byID := map[string]apiTask{}
	for _, a := range apps {
		for _, task := range c.waitRunning(a.id, a.n, 30*time.Second) {
			byID[task.ID] = task
		}
	}

	var st struct {
		Slaves []struct {
			ID  string `json:"id"`
			PID string `json:"pid"`
		} `json:"slaves"`
		Frameworks []struct {
			ID    string           `json:"id"`
			Tasks []mesosStateTask `json:"tasks"`
		} `json:"frameworks"`
	}
	c.mustDo("GET", "/master/state", nil, 200, &st)
	slaveIP := map[string]string{} // from the pid, as Mesos-DNS's host source reads it
	for _, s := range st.Slaves {
		_, addr, _ := strings.Cut(s.PID, "@")
		slaveIP[s.ID] = addr[:strings.LastIndexByte(addr, ':')]
	}
	if len(st.Frameworks) != 1 || len(st.Frameworks[0].Tasks) != len(byID) {
		t.Fatalf("frameworks %+v, want one with %d tasks", st.Frameworks, len(byID))
	}
	fw := st.Frameworks[0]
	for _, mt := range fw.Tasks {
		task, ok := byID[mt.ID]
		if !ok {
			t.Fatalf("task %s is not one of /v2/tasks'", mt.ID)
		}
		app := apps[slices.IndexFunc(apps, func(a mesosApp) bool { return a.id == task.AppID })]
		if mt.FrameworkID != fw.ID || mt.SlaveID != task.SlaveID || slaveIP[mt.SlaveID] == "" {
			t.Errorf("%s: framework_id %q slave_id %q, want %q and %q (a slave of the state)", mt.ID, mt.FrameworkID, mt.SlaveID, fw.ID, task.SlaveID)
		}
		if mt.Discovery == nil {
			t.Errorf("%s: no discovery", mt.ID)
			continue
		}
		if mt.Name != app.name || mt.Discovery.Name != app.name || mt.Discovery.Visibility != "FRAMEWORK" {
			t.Errorf("%s: name %q, discovery %q %q, want %q, FRAMEWORK", mt.ID, mt.Name, mt.Discovery.Name, mt.Discovery.Visibility, app.name)
		}
		var ports []string
		for _, p := range mt.Discovery.Ports.Ports {
			ports = append(ports, fmt.Sprintf("%d %s %s", slices.Index(task.Ports, p.Number), p.Name, p.Protocol))
		}
		if !slices.Equal(ports, app.ports) {
			t.Errorf("%s (host ports %v): discovery ports %v, want %v", mt.ID, task.Ports, ports, app.ports)
		}
		var ips []string
		for _, s := range mt.Statuses {
			for _, ni := range s.ContainerStatus.NetworkInfos {
				for _, a := range ni.IPAddresses {
					ips = append(ips, s.State+" "+a.IPAddress)
				}
			}
		}
		if want := "TASK_RUNNING " + slaveIP[mt.SlaveID]; !slices.Equal(ips, []string{want}) || task.IPAddresses[0].IPAddress != slaveIP[mt.SlaveID] {
			t.Errorf("%s: status addresses %v (task %v), want [%s]", mt.ID, ips, task.IPAddresses, want)
		}
	}
}

package master

import (
	"net/http"
	"testing"

	"github.com/atollhq/atoll/events"
)

// A task shows its agent's region and zone, as Marathon shows its agent's
// fault domain; an agent without them gives tasks without them.
func TestTaskRegionAndZone(t *testing.T) {
	m, _ := leadingMaster(t)
	_, err := m.registerAgent(events.NodeToken("oslo-1"), events.RegisterRequest{
		Hostname: "oslo-1", IP: "127.0.0.9", Attributes: map[string]string{"region": "oslo", "zone": "a"},
		Resources: events.Resources{Cpus: 8, Mem: 8192, Disk: 1000, Ports: []events.PortRange{{Begin: 31000, End: 31100}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	createApp(t, m, `{"id": "/web", "cmd": "sleep 1000", "instances": 1}`)
	task := stagedTask(t, m, "/web")
	if task.Region != "oslo" || task.Zone != "a" {
		t.Fatalf("task region %q zone %q, want oslo a", task.Region, task.Zone)
	}
	res := call(t, m.Handler(), "GET", "/v2/apps/web/tasks", "")
	if res.status != http.StatusOK || at(t, res.json(t), "tasks", 0, "region") != "oslo" || at(t, res.json(t), "tasks", 0, "zone") != "a" {
		t.Fatalf("GET tasks: %d %s", res.status, res.body)
	}
}

package master

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// mesosApps are the apps of issue 12's side-by-side run with Mesos-DNS:
// an app in a group with two named ports (tcp and udp), one at the root
// with an unnamed port, one in deep groups (its port both udp and tcp).
var mesosApps = []string{
	`{"id":"/shop/web","cmd":"sleep 1000","instances":2,"labels":{"HAPROXY_GROUP":"external"},
	  "portDefinitions":[{"port":0,"name":"http","labels":{"VIP_0":"/shop/web:80"}},{"port":0,"name":"dns","protocol":"udp"}]}`,
	`{"id":"/db","cmd":"sleep 1000","instances":1,"portDefinitions":[{"port":0}]}`,
	`{"id":"/a/b/c/svc","cmd":"sleep 1000","instances":1,"portDefinitions":[{"port":0,"name":"sip","protocol":"udp,tcp"}]}`,
}

// wantDiscovery is, per app, the discovery Marathon sets on its tasks
// (name, then per host port index: name/protocol of each Mesos port).
var wantDiscovery = map[string]struct {
	name  string
	ports []string // "index name protocol"
}{
	"/shop/web":  {"web.shop", []string{"0 http tcp", "1 dns udp"}},
	"/db":        {"db", []string{"0  tcp"}},
	"/a/b/c/svc": {"svc.c.b.a", []string{"0 sip udp", "0 sip tcp"}},
}

// withMesosApps runs mesosApps' tasks on two agents, each task's address
// its agent's, as the scheduler places them.
func withMesosApps(t *testing.T) (http.Handler, map[string]events.Task) {
	t.Helper()
	m, h := newAPI(t, "")
	for _, app := range mesosApps {
		if res := call(t, h, "POST", "/v2/apps", app); res.status != http.StatusCreated {
			t.Fatalf("create: %d %s", res.status, res.body)
		}
	}
	a1, a2 := eventstest.Agent("agent-1"), eventstest.Agent("agent-2")
	a2.IP, a2.Hostname = "10.0.0.2", "agent-2.test"
	changes := []events.Change{events.PutAgent(a1), events.PutAgent(a2)}
	tasks := map[string]events.Task{}
	var apps map[string]events.App
	m.View(func(s *events.State) { apps = s.Apps })
	port := 31000
	n := 0
	for _, id := range []string{"/shop/web", "/db", "/a/b/c/svc"} {
		app := apps[id]
		for i := range app.Instances {
			agent := []events.Agent{a1, a2}[n%2]
			n++
			task := eventstest.Task(fmt.Sprintf("%s.%d", strings.ReplaceAll(strings.Trim(id, "/"), "/", "_"), i), id, agent.ID, events.TaskRunning)
			task.IPAddresses = []events.IPAddress{{IPAddress: agent.IP, Protocol: "IPv4"}}
			task.Ports = nil
			for range app.PortDefinitions {
				task.Ports = append(task.Ports, port)
				port++
			}
			task.Version = app.Version
			started := eventstest.T0.Add(time.Second)
			task.StartedAt = &started
			tasks[task.ID] = task
			changes = append(changes, events.PutTask(task))
		}
	}
	if err := m.commit(changes...); err != nil {
		t.Fatal(err)
	}
	return h, tasks
}

// TestMesosStateTasksAsMarathonsOnMesos: every task of /master/state
// carries what Mesos shows for a Marathon task, so Mesos-DNS reading it
// makes the discovery names and named-port SRV records.
func TestMesosStateTasksAsMarathonsOnMesos(t *testing.T) {
	h, tasks := withMesosApps(t)
	st := call(t, h, "GET", "/master/state", "").json(t)

	slaveIP := map[string]string{} // slave id -> IP of its pid
	for _, s := range at(t, st, "slaves").([]any) {
		s := s.(map[string]any)
		_, ip, _ := strings.Cut(s["pid"].(string), "@")
		slaveIP[s["id"].(string)] = strings.TrimSuffix(ip, ":5051")
	}
	fw := at(t, st, "frameworks", 0).(map[string]any)
	got := at(t, fw, "tasks").([]any)
	if len(got) != len(tasks) {
		t.Fatalf("%d tasks, want %d", len(got), len(tasks))
	}
	for _, v := range got {
		mt := v.(map[string]any)
		task, ok := tasks[mt["id"].(string)]
		if !ok {
			t.Fatalf("unknown task %v", mt["id"])
		}
		want := wantDiscovery[task.AppID]
		if mt["framework_id"] != fw["id"] || mt["slave_id"] != task.AgentID || slaveIP[task.AgentID] == "" || mt["role"] != "*" {
			t.Errorf("%s: framework_id %v slave_id %v role %v, want %v %s *", task.ID, mt["framework_id"], mt["slave_id"], mt["role"], fw["id"], task.AgentID)
		}
		if mt["name"] != want.name {
			t.Errorf("%s: name %v, want %s", task.ID, mt["name"], want.name)
		}
		d, ok := mt["discovery"].(map[string]any)
		if !ok {
			t.Errorf("%s: discovery %v", task.ID, mt["discovery"])
			continue
		}
		if d["visibility"] != "FRAMEWORK" || d["name"] != want.name {
			t.Errorf("%s: discovery %v, want visibility FRAMEWORK, name %s", task.ID, d, want.name)
		}
		var ports []string
		for _, p := range at(t, d, "ports", "ports").([]any) {
			p := p.(map[string]any)
			idx := -1
			for i, hp := range task.Ports {
				if float64(hp) == p["number"] {
					idx = i
				}
			}
			name, _ := p["name"].(string)
			ports = append(ports, fmt.Sprintf("%d %s %s", idx, name, p["protocol"]))
		}
		if fmt.Sprint(ports) != fmt.Sprint(want.ports) {
			t.Errorf("%s (ports %v): discovery ports %v, want %v", task.ID, task.Ports, ports, want.ports)
		}
		ip := at(t, mt, "statuses", 0, "container_status", "network_infos", 0, "ip_addresses", 0, "ip_address")
		if at(t, mt, "statuses", 0, "state") != "TASK_RUNNING" || ip != slaveIP[task.AgentID] {
			t.Errorf("%s: status %v, want TASK_RUNNING with its agent's IP %s", task.ID, at(t, mt, "statuses"), slaveIP[task.AgentID])
		}
		if task.AppID == "/shop/web" {
			if at(t, d, "ports", "ports", 0, "labels", "labels", 0, "key") != "VIP_0" ||
				at(t, mt, "labels", 0, "key") != "HAPROXY_GROUP" || at(t, mt, "labels", 0, "value") != "external" {
				t.Errorf("%s: labels %v, port labels %v", task.ID, mt["labels"], at(t, d, "ports", "ports", 0))
			}
			if rp := fmt.Sprintf("[%d-%d]", task.Ports[0], task.Ports[1]); at(t, mt, "resources", "ports") != rp {
				t.Errorf("%s: resources.ports %v, want %s", task.ID, at(t, mt, "resources", "ports"), rp)
			}
		}
		if _, ok := mt["labels"]; task.AppID == "/db" && ok {
			t.Errorf("%s: labels %v, want none (Marathon sets none for an app without labels)", task.ID, mt["labels"])
		}
	}
}

// TestMesosStateTaskShape compares a task with the recorded Mesos task of
// testdata/mesos (see its README): every field, the same JSON type.
func TestMesosStateTaskShape(t *testing.T) {
	h, _ := withMesosApps(t)
	raw, err := os.ReadFile("testdata/mesos/task.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/master/state", "/master/state.json", "/state.json"} {
		fw := at(t, call(t, h, "GET", path, "").json(t), "frameworks", 0)
		var web map[string]any
		for _, v := range at(t, fw, "tasks").([]any) {
			if v.(map[string]any)["name"] == "web.shop" {
				web = v.(map[string]any)
			}
		}
		if web == nil {
			t.Fatalf("%s: no task of /shop/web", path)
		}
		sameShape(t, path+" task", "", want, web)
	}
}

// /master/state streams its tasks in, and the bytes are json.Marshal's of
// the whole, as before.
func TestMesosStateStreamsWhatMarshalWrites(t *testing.T) {
	m, _, _ := withTasks(t)
	var in mesosInputs
	m.View(func(s *events.State) {
		in.leader, in.agents = s.Leader, s.SortedAgents()
		in.lastHeard = make([]time.Time, len(in.agents))
	})
	in.view = m.reads.load()
	st, tasks := m.mesosStateOf(in)
	if len(tasks) != 2 {
		t.Fatalf("%d tasks, want 2", len(tasks))
	}
	streamed := httptest.NewRecorder()
	writeMesosState(streamed, st, tasks)
	st.Frameworks[0].Tasks = tasks
	whole := httptest.NewRecorder()
	writeJSON(whole, http.StatusOK, st)
	if streamed.Body.String() != whole.Body.String() {
		t.Errorf("streamed:\n%s\nmarshalled:\n%s", streamed.Body, whole.Body)
	}
}

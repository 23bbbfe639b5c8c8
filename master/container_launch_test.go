package master

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/natsauth"
)

// A bridged app as Marathon's docs have it: its port mappings get
// service ports from the service port range and, per task, host ports
// from the agent's (fixed ones exactly); the agent is told to run the
// image with each host port leading to its container port; the task
// shows its host ports, service ports and, once running, its container's
// address, in /v2/apps/{id}/tasks and /master/state.
func TestBridgedAppPortsLaunchAndTaskView(t *testing.T) {
	m, _, ns := leadingMasterOn(t)
	agentID := addAgent(t, m, "h1", "127.0.0.11")
	app := createApp(t, m, `{"id": "/echo", "instances": 1, "mem": 32, "cpus": 0.1,
		"container": {"type": "DOCKER", "docker": {"image": "127.0.0.1:5000/echo:1", "forcePullImage": true,
			"parameters": [{"key": "env", "value": "A=b"}]},
			"volumes": [{"containerPath": "/data", "hostPath": "data", "mode": "RW"}],
			"portMappings": [{"containerPort": 8080, "hostPort": 0, "name": "http"},
				{"containerPort": 0, "hostPort": 31050, "servicePort": 10200, "protocol": "udp"}]},
		"networks": [{"mode": "container/bridge"}],
		"healthChecks": [{"protocol": "TCP", "portIndex": 1}]}`)
	if got := app.ServicePorts(); !reflect.DeepEqual(got, []int{10000, 10200}) {
		t.Fatalf("service ports %v, want [10000 10200]", got)
	}

	got := make(chan events.LaunchRequest, 1)
	nc := ns.ConnectAs(t, natsauth.RoleAgent, "h1")
	if _, err := nc.Subscribe(m.cfg.Subjects.Launch("h1"), func(msg *nats.Msg) {
		reqs, _, err := events.DecodeLaunches(msg.Data)
		if err != nil {
			t.Errorf("decode launches: %v", err)
		}
		reply := events.AckBatch{Acks: []events.TaskAck{}}
		for _, r := range reqs {
			reply.Acks = append(reply.Acks, events.TaskAck{TaskID: r.Task.ID})
			got <- r
		}
		data, _ := json.Marshal(reply)
		_ = msg.Respond(data)
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	sends, _ := reconcile(t, m)
	runAll(sends)
	var req events.LaunchRequest
	select {
	case req = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no launch request reached the agent")
	}
	if !reflect.DeepEqual(req.Task.Ports, []int{31000, 31050}) {
		t.Fatalf("host ports %v, want [31000 31050]: the lowest free one, and the fixed one", req.Task.Ports)
	}
	want := &events.ContainerLaunch{
		Image: "127.0.0.1:5000/echo:1", ForcePull: true,
		Parameters: []events.DockerParameter{{Key: "env", Value: "A=b"}},
		Volumes:    []events.Volume{{ContainerPath: "/data", HostPath: "data", Mode: "RW"}},
		Bridged:    true,
		Ports: []events.ContainerPortLink{
			{HostPort: 31000, ContainerPort: 8080, Protocol: "tcp"},
			{HostPort: 31050, ContainerPort: 31050, Protocol: "udp"}, // containerPort 0: the host port
		},
	}
	if !reflect.DeepEqual(req.Container, want) {
		t.Fatalf("container launch\n%+v\nwant\n%+v", req.Container, want)
	}
	if req.Cmd != "" {
		t.Fatalf("cmd %q: an image-only app runs the image's entrypoint", req.Cmd)
	}
	for k, v := range map[string]string{"PORT0": "31000", "PORT1": "31050", "PORT": "31000", "PORTS": "31000,31050",
		"PORT_8080": "31000", "PORT_31050": "31050", "PORT_HTTP": "31000", "HOST": "127.0.0.11",
		"MARATHON_APP_DOCKER_IMAGE": "127.0.0.1:5000/echo:1"} {
		if req.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, req.Env[k], v)
		}
	}
	if len(req.HealthChecks) != 1 || *req.HealthChecks[0].PortIndex != 1 {
		t.Fatalf("health checks %+v: the agent checks portIndex 1, host port %d", req.HealthChecks, req.Task.Ports[1])
	}

	// The agent says the task runs, with its container's address.
	up := events.StatusUpdate{TaskID: req.Task.ID, AgentID: agentID, State: events.TaskRunning,
		IPAddresses: []events.IPAddress{{IPAddress: "198.18.0.5", Protocol: "IPv4"}}, Time: time.Now()}
	acked := make(chan struct{})
	if _, err := m.recordStatus("h1", up, func() { close(acked) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-acked:
	case <-time.After(10 * time.Second):
		t.Fatal("status not stored")
	}

	h := m.Handler()
	doc := call(t, h, "GET", "/v2/apps/echo/tasks", "").json(t)
	task := at(t, doc, "tasks", 0).(map[string]any)
	for field, want := range map[string]string{
		"ports": "[31000,31050]", "servicePorts": "[10000,10200]",
		"ipAddresses": `[{"ipAddress":"198.18.0.5","protocol":"IPv4"}]`, "host": `"h1"`,
	} {
		if b, _ := json.Marshal(task[field]); string(b) != want {
			t.Errorf("task %s = %s, want %s", field, b, want)
		}
	}
	state := call(t, h, "GET", "/master/state", "").json(t)
	var mt map[string]any
	for _, fw := range at(t, state, "frameworks").([]any) {
		for _, tk := range fw.(map[string]any)["tasks"].([]any) {
			mt = tk.(map[string]any)
		}
	}
	if mt == nil {
		t.Fatalf("no task in /master/state: %v", state)
	}
	if b, _ := json.Marshal(at(t, mt, "statuses", 0, "container_status", "network_infos")); string(b) != `[{"ip_addresses":[{"ip_address":"198.18.0.5","protocol":"IPv4"}]}]` {
		t.Errorf("network_infos %s", b)
	}
	ports := fmt.Sprint(at(t, mt, "discovery", "ports", "ports"))
	if ports != "[map[name:http number:31000 protocol:tcp] map[number:31050 protocol:udp]]" {
		t.Errorf("discovery ports %s, want the host ports with the mappings' names and protocols", ports)
	}
	// Killing an app's tasks on a host by its address still finds the
	// task whose own address is its container's.
	res := call(t, h, "DELETE", "/v2/apps/echo/tasks?host=127.0.0.11&force=true", "")
	if res.status != 200 || len(at(t, res.json(t), "tasks").([]any)) != 1 {
		t.Fatalf("kill by the agent's address: %d %s", res.status, res.body)
	}
}

// A fixed host port is that port, on an agent where it is free: a second
// instance waits for another agent rather than taking another port.
func TestBridgedFixedHostPortPlacement(t *testing.T) {
	m, _, _ := leadingMasterOn(t)
	addAgent(t, m, "h1", "127.0.0.11")
	createApp(t, m, `{"id": "/dns", "instances": 2, "mem": 32, "cpus": 0.1,
		"container": {"docker": {"image": "dns:1"},
			"portMappings": [{"containerPort": 53, "hostPort": 31053, "protocol": "udp"},
				{"containerPort": 53, "hostPort": 31053, "protocol": "tcp"}]},
		"networks": [{"mode": "container/bridge"}]}`)
	reconcile(t, m)
	staged := tasksIn(m, "/dns", events.TaskStaging)
	if len(staged) != 1 || !reflect.DeepEqual(staged[0].Ports, []int{31053, 31053}) {
		t.Fatalf("staged %+v, want one task on 31053 (tcp and udp)", staged)
	}
	if reason := waitingReason(m, "/dns"); reason == "" {
		t.Fatal("the second instance does not say why it waits")
	}
	addAgent(t, m, "h2", "127.0.0.12")
	reconcile(t, m)
	if staged := tasksIn(m, "/dns", events.TaskStaging); len(staged) != 2 || staged[0].AgentID == staged[1].AgentID {
		t.Fatalf("staged %+v, want one task per agent", staged)
	}
}

// An update that changes nothing but instances keeps the service ports
// the mappings were given, and is a scaling, not a restart.
func TestBridgedServicePortsKeptAcrossUpdates(t *testing.T) {
	m, _, _ := leadingMasterOn(t)
	body := `{"id": "/echo", "instances": 0,
		"container": {"docker": {"image": "e:1"}, "portMappings": [{"containerPort": 80}]},
		"networks": [{"mode": "container/bridge"}]}`
	createApp(t, m, `{"id": "/other", "instances": 0, "cmd": "x"}`) // takes 10000
	app := createApp(t, m, body)
	if got := app.ServicePorts(); !reflect.DeepEqual(got, []int{10001}) {
		t.Fatalf("service ports %v", got)
	}
	var existing events.App
	m.View(func(s *events.State) { existing = s.Apps["/echo"] })
	ch, err := m.UpdateApp("/echo", func(existing *events.App) (events.App, error) {
		return appForUpdate("/echo", existing, []byte(`{"instances": 2, "container": {"docker": {"image": "e:1"}, "portMappings": [{"containerPort": 80}]}}`), true, testLimits)
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := ch.App.ServicePorts(); !reflect.DeepEqual(got, []int{10001}) {
		t.Fatalf("after update: service ports %v, want [10001]", got)
	}
	if ch.App.VersionInfo.LastConfigChangeAt != existing.VersionInfo.LastConfigChangeAt {
		t.Fatal("an instances-only update restarted the app")
	}
}

// go-marathon (v0.7.1) builds a bridged Docker app the Marathon 1.4 way
// (docker.network BRIDGE, docker.portMappings); its TaskEndpoints finds a
// container port in the app's docker.portMappings and answers with each
// task's host and host port: the app's JSON carries both, so it works
// (and does not panic) on a bridged app.
func TestGoMarathonTaskEndpointsOnABridgedApp(t *testing.T) {
	m, h := newAPI(t, "")
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := marathon.NewClient(marathon.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	built := marathon.NewDockerApplication().Name("/echo").CPU(0.1).Memory(32).Count(0)
	built.Container.Docker.Container("echo:1").Bridged().Expose(8080, 9090)
	if _, err := c.CreateApplication(built); err != nil {
		t.Fatalf("go-marathon CreateApplication: %v", err)
	}
	read, err := c.Application("/echo")
	if err != nil || read.Container == nil || read.Container.Docker == nil || read.Container.Docker.PortMappings == nil {
		t.Fatalf("go-marathon Application: %+v %v", read, err)
	}
	if pms := *read.Container.Docker.PortMappings; len(pms) != 2 || pms[1].ContainerPort != 9090 || pms[1].ServicePort != 10001 {
		t.Fatalf("docker.portMappings %+v, want 8080 and 9090 with service ports 10000, 10001", pms)
	}
	agent := eventstest.Agent("agent-1")
	var app events.App
	m.View(func(s *events.State) { app = s.Apps["/echo"] })
	task := eventstest.Task("echo.1", "/echo", agent.ID, events.TaskRunning)
	task.Ports, task.Version = []int{31000, 31001}, app.Version
	task.IPAddresses = []events.IPAddress{{IPAddress: "198.18.0.5", Protocol: "IPv4"}}
	if err := m.commit(events.PutAgent(agent), events.PutTask(task)); err != nil {
		t.Fatal(err)
	}
	got, err := c.TaskEndpoints("/echo", 9090, false)
	if err != nil || !reflect.DeepEqual(got, []string{task.Host + ":31001"}) {
		t.Fatalf("TaskEndpoints = %v, %v; want [%s:31001]", got, err, task.Host)
	}
}

// An app mounting a host path waits, saying why, until an agent that
// allows the path registers (the policy its registration carries), and
// then runs there only.
func TestHostVolumeAppGoesOnlyWhereAllowed(t *testing.T) {
	m, _, _ := leadingMasterOn(t)
	addAgent(t, m, "h1", "127.0.0.11")
	createApp(t, m, `{"id": "/db", "instances": 1, "mem": 32, "cpus": 0.1,
		"container": {"docker": {"image": "db:1"},
			"volumes": [{"containerPath": "/var/lib/db", "hostPath": "/srv/db", "mode": "RW"}]}}`)
	reconcile(t, m)
	if staged := tasksIn(m, "/db", events.TaskStaging); len(staged) != 0 {
		t.Fatalf("staged %+v on an agent that does not allow /srv/db", staged)
	}
	want := "1 of 1 instances cannot be placed: host volume /srv/db is not allowed (agent flag --host-volumes) (1 of 1 agents)"
	if reason := waitingReason(m, "/db"); reason != want {
		t.Fatalf("waiting %q, want %q", reason, want)
	}
	id, err := m.registerAgent(events.NodeToken("h2"), events.RegisterRequest{Hostname: "h2", IP: "127.0.0.12",
		Resources:  events.Resources{Cpus: 8, Mem: 8192, Disk: 1000, Ports: []events.PortRange{{Begin: 31000, End: 31100}}},
		Containers: events.ContainerPolicy{HostVolumes: []string{"/srv"}}})
	if err != nil {
		t.Fatal(err)
	}
	reconcile(t, m)
	if staged := tasksIn(m, "/db", events.TaskStaging); len(staged) != 1 || staged[0].AgentID != id {
		t.Fatalf("staged %+v, want one task on h2 (%s)", staged, id)
	}
}

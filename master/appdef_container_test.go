package master

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/atollhq/atoll/events"
)

const bridgedApp = `{"id":"/echo","instances":3,
	"container":{"type":"DOCKER","docker":{"image":"127.0.0.1:5000/echo:1"},
		"portMappings":[{"containerPort":8080,"hostPort":0,"servicePort":10200,"name":"http"}]},
	"networks":[{"mode":"container/bridge"}]}`

// Marathon's docs example: an image-only bridged app, no cmd.
func TestBridgedAppAccepted(t *testing.T) {
	a, err := appForCreate([]byte(bridgedApp), testLimits)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if !a.Bridged() || a.Container.Docker.Image != "127.0.0.1:5000/echo:1" || a.Cmd != "" {
		t.Fatalf("app %+v", a)
	}
	want := []events.PortMapping{{ContainerPort: 8080, ServicePort: 10200, Protocol: "tcp", Name: "http"}}
	if !reflect.DeepEqual(a.Container.PortMappings, want) {
		t.Fatalf("portMappings %+v, want %+v", a.Container.PortMappings, want)
	}
	if len(a.PortDefinitions) != 0 {
		t.Fatalf("a bridged app keeps portDefinitions %+v (Marathon drops the default)", a.PortDefinitions)
	}
	if got := a.PortSpecs(); len(got) != 1 || got[0].Port != 10200 || got[0].Name != "http" {
		t.Fatalf("PortSpecs %+v", got)
	}
}

func TestContainerDefaultsAndLegacyFields(t *testing.T) {
	t.Run("bridged without mappings gets Marathon's default one", func(t *testing.T) {
		a, err := appForCreate([]byte(`{"id":"/a","container":{"docker":{"image":"x"}},"networks":[{"mode":"container/bridge"}]}`), testLimits)
		if err != nil {
			t.Fatal(err)
		}
		if a.Container.Type != events.ContainerDocker {
			t.Errorf("type %q, want DOCKER (container.raml's default)", a.Container.Type)
		}
		want := []events.PortMapping{{Protocol: "tcp", Name: "default"}}
		if !reflect.DeepEqual(a.Container.PortMappings, want) {
			t.Errorf("portMappings %+v, want %+v", a.Container.PortMappings, want)
		}
	})
	t.Run("an empty portMappings stays empty", func(t *testing.T) {
		a, err := appForCreate([]byte(`{"id":"/a","container":{"docker":{"image":"x"},"portMappings":[]},"networks":[{"mode":"container/bridge"}]}`), testLimits)
		if err != nil || len(a.Container.PortMappings) != 0 {
			t.Fatalf("%v %+v", err, a.Container)
		}
	})
	t.Run("docker.network BRIDGE and docker.portMappings are Marathon 1.5's networks and portMappings", func(t *testing.T) {
		a, err := appForCreate([]byte(`{"id":"/dns","container":{"type":"DOCKER","docker":{"image":"mesos-dns","network":"BRIDGE",
			"portMappings":[{"containerPort":53,"hostPort":53,"protocol":"udp"},{"containerPort":53,"hostPort":53,"protocol":"tcp"}]}}}`), testLimits)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Bridged() || len(a.Container.PortMappings) != 2 || a.Container.PortMappings[0].HostPort != 53 {
			t.Fatalf("app %+v %+v", a.Networks, a.Container)
		}
	})
	t.Run("Marathon 1.4's ports of a BRIDGE app are its mappings' service ports", func(t *testing.T) {
		a, err := appForCreate([]byte(`{"id":"/mesos-dns","cpus":0.1,"mem":64,"instances":1,"ports":[53],
			"container":{"type":"DOCKER","docker":{"image":"mesos-dns","network":"BRIDGE",
				"portMappings":[{"containerPort":53,"hostPort":53,"protocol":"udp"}]}}}`), testLimits)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.PortDefinitions) != 0 || !reflect.DeepEqual(a.ServicePorts(), []int{53}) {
			t.Fatalf("portDefinitions %+v, service ports %v", a.PortDefinitions, a.ServicePorts())
		}
		_, err = appForCreate([]byte(`{"id":"/a","ports":[10001],"container":{"docker":{"image":"x","network":"BRIDGE",
			"portMappings":[{"containerPort":53,"servicePort":10000}]}}}`), testLimits)
		wantDetail(t, err, 422, "/", msgDefsWithBridge)
	})
	t.Run("docker.network HOST is the host network with port definitions", func(t *testing.T) {
		a, err := appForCreate([]byte(`{"id":"/a","cmd":"x","container":{"docker":{"image":"x","network":"HOST"}}}`), testLimits)
		if err != nil || a.Bridged() || len(a.PortDefinitions) != 1 {
			t.Fatalf("%v %+v %+v", err, a.Networks, a.PortDefinitions)
		}
	})
	t.Run("the API's JSON goes back in as it came out", func(t *testing.T) {
		a, err := appForCreate([]byte(bridgedApp), testLimits)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := json.Marshal(appViewFrom(a, events.TaskCounts{}, nil, nil, false))
		var v map[string]json.RawMessage
		_ = json.Unmarshal(out, &v)
		if !strings.Contains(string(v["container"]), `"docker":{"image":"127.0.0.1:5000/echo:1","forcePullImage":false,"privileged":false,"parameters":[],"portMappings":[{"containerPort":8080`) {
			t.Fatalf("container %s: docker.portMappings (go-marathon's) missing", v["container"])
		}
		if string(v["networks"]) != `[{"mode":"container/bridge"}]` {
			t.Fatalf("networks %s", v["networks"])
		}
		body := `{"id":"/echo","container":` + string(v["container"]) + `,"networks":` + string(v["networks"]) + `}`
		b, err := appForUpdate("/echo", &a, []byte(body), true, testLimits)
		if err != nil || !reflect.DeepEqual(b.Container, a.Container) {
			t.Fatalf("PUT of its own JSON: %v\n%+v\n%+v", err, b.Container, a.Container)
		}
	})
	t.Run("a host app's networks are shown as the host's", func(t *testing.T) {
		a, _ := appForCreate([]byte(`{"id":"/a","cmd":"x"}`), testLimits)
		out, _ := json.Marshal(appDefinitionOf(a))
		if !strings.Contains(string(out), `"networks":[{"mode":"host"}]`) || strings.Contains(string(out), `"container"`) {
			t.Fatalf("%s", out)
		}
	})
}

// A PUT replaces the container as a whole; switching networks moves the
// app's ports from port definitions to mappings and back.
func TestContainerUpdates(t *testing.T) {
	host, err := appForCreate([]byte(`{"id":"/a","cmd":"x","portDefinitions":[{"port":10005}]}`), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	bridged, err := appForUpdate("/a", &host, []byte(`{"container":{"docker":{"image":"x"}},"networks":[{"mode":"container/bridge"}]}`), true, testLimits)
	if err != nil {
		t.Fatalf("to bridge: %v", err)
	}
	if len(bridged.PortDefinitions) != 0 || len(bridged.Container.PortMappings) != 1 {
		t.Fatalf("to bridge: %+v %+v", bridged.PortDefinitions, bridged.Container)
	}
	replaced, err := appForUpdate("/a", &bridged, []byte(`{"container":{"docker":{"image":"y","forcePullImage":true},"portMappings":[{"containerPort":80},{"containerPort":81}]}}`), true, testLimits)
	if err != nil || replaced.Container.Docker.Image != "y" || len(replaced.Container.PortMappings) != 2 || !replaced.Bridged() {
		t.Fatalf("replace: %v %+v", err, replaced.Container)
	}
	back, err := appForUpdate("/a", &replaced, []byte(`{"networks":[{"mode":"host"}]}`), true, testLimits)
	if err != nil {
		t.Fatalf("to host: %v", err)
	}
	if len(back.Container.PortMappings) != 0 || len(back.PortDefinitions) != 1 || back.PortDefinitions[0].Name != "default" {
		t.Fatalf("to host: %+v %+v", back.PortDefinitions, back.Container)
	}
	if replaced.Container == bridged.Container || &replaced.Container.PortMappings[0] == &bridged.Container.PortMappings[0] {
		t.Fatal("the update shares its container with the app it replaces")
	}
}

// What atoll cannot run is a 422 naming it, with Marathon's message
// where Marathon has the rule.
func TestContainerRefusals(t *testing.T) {
	img := `"docker":{"image":"x"}`
	bridge := `"networks":[{"mode":"container/bridge"}]`
	tests := []struct{ name, body, path, msg string }{
		{"privileged", `{"id":"/a","container":{"docker":{"image":"x","privileged":true}}}`, "/container/docker/privileged", "privileged"},
		{"pullConfig", `{"id":"/a","container":{"docker":{"image":"x","pullConfig":{"secret":"s"}}}}`, "/container/docker/pullConfig", "not supported"},
		{"credential", `{"id":"/a","container":{"docker":{"image":"x","credential":{"principal":"p"}}}}`, "/container/docker/credential", "not supported"},
		{"unknown docker parameter", `{"id":"/a","container":{"docker":{"image":"x","parameters":[{"key":"cap-add","value":"NET_ADMIN"},{"key":"privileged","value":"true"}]}}}`,
			"/container/docker/parameters(1)/key", "cap-add, cap-drop"},
		{"docker parameter value the agent would refuse", `{"id":"/a","container":{"docker":{"image":"x","parameters":[{"key":"env","value":"A=b"},{"key":"ulimit","value":"nofile=lots"}]}}}`,
			"/container/docker/parameters(1)/value", `"nofile=lots" for ulimit: soft limit is not a number`},
		{"unknown capability", `{"id":"/a","container":{"docker":{"image":"x","parameters":[{"key":"cap-add","value":"FLY"}]}}}`,
			"/container/docker/parameters(0)/value", "unknown capability"},
		{"no image", `{"id":"/a","container":{"docker":{"image":""}}}`, "/container/docker/image", msgNotEmpty},
		{"MESOS without an image", `{"id":"/a","cmd":"x","container":{"type":"MESOS"}}`, "/container/docker", "image"},
		{"bad type", `{"id":"/a","container":{"type":"RKT",` + img + `}}`, "/container/type", "DOCKER, MESOS"},
		{"appc", `{"id":"/a","container":{"type":"MESOS","appc":{"image":"x"}}}`, "/container/appc", "not supported"},
		{"persistent volume", `{"id":"/a","container":{` + img + `,"volumes":[{"containerPath":"data","mode":"RW","persistent":{"size":10}}]}}`, "/container/volumes(0)/persistent", "not supported"},
		{"external volume", `{"id":"/a","container":{` + img + `,"volumes":[{"containerPath":"/d","mode":"RW","external":{"name":"v"}}]}}`, "/container/volumes(0)/external", "not supported"},
		{"volume mode", `{"id":"/a","container":{` + img + `,"volumes":[{"containerPath":"/d","hostPath":"/srv","mode":"RX"}]}}`, "/container/volumes(0)/mode", "RW, RO"},
		{"volume out of the sandbox", `{"id":"/a","container":{` + img + `,"volumes":[{"containerPath":"/d","hostPath":"../x","mode":"RO"}]}}`, "/container/volumes(0)/hostPath", ".."},
		{"named network", `{"id":"/a",` + `"container":{` + img + `},"networks":[{"mode":"container","name":"dcos"}]}`, "/networks(0)/mode", "named container networks"},
		{"two networks", `{"id":"/a","container":{` + img + `},"networks":[{"mode":"container/bridge"},{"mode":"host"}]}`, "/networks", "expected 1"},
		{"mappings on the host network", `{"id":"/a","container":{` + img + `,"portMappings":[{"containerPort":80}]}}`, "/", msgMappingsWithHost},
		{"port definitions on the bridge", `{"id":"/a","container":{` + img + `},` + bridge + `,"portDefinitions":[{"port":0}]}`, "/", msgDefsWithBridge},
		{"bridge without a container", `{"id":"/a","cmd":"x",` + bridge + `}`, "/container", "image"},
		{"both network fields", `{"id":"/a","container":{"docker":{"image":"x","network":"BRIDGE"}},` + bridge + `}`, "/", msgBothDockerNetwork},
		{"docker.network USER", `{"id":"/a","container":{"docker":{"image":"x","network":"USER"}}}`, "/container/docker/network", "not supported"},
		{"different docker.portMappings", `{"id":"/a","container":{"docker":{"image":"x","portMappings":[{"containerPort":81}]},"portMappings":[{"containerPort":80}]},` + bridge + `}`, "/container", msgBothPortMappings},
		{"mapping port range", `{"id":"/a","container":{` + img + `,"portMappings":[{"containerPort":70000}]},` + bridge + `}`, "/container/portMappings(0)/containerPort", "between 0 and 65535"},
		{"mapping names", `{"id":"/a","container":{` + img + `,"portMappings":[{"name":"a"},{"name":"a"}]},` + bridge + `}`, "/container/portMappings", msgPortNames},
		{"same host port twice", `{"id":"/a","container":{` + img + `,"portMappings":[{"hostPort":80},{"hostPort":80}]},` + bridge + `}`, "/container/portMappings", msgHostPortsUnique},
		{"requirePorts on the bridge", `{"id":"/a","requirePorts":true,"container":{` + img + `},` + bridge + `}`, "/requirePorts", "host networking"},
		{"health check past the mappings", `{"id":"/a","container":{` + img + `,"portMappings":[{"containerPort":80}]},` + bridge + `,"healthChecks":[{"portIndex":1}]}`, "/healthChecks(0)", msgHCPortIndex},
		{"unknown container field", `{"id":"/a","container":{` + img + `,"image":"x"}}`, "/container/image", msgUnknownContainer},
		{"no cmd, no image", `{"id":"/a"}`, "/", msgCmdOrArgs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := appForCreate([]byte(tt.body), testLimits)
			wantDetail(t, err, 422, tt.path, tt.msg)
		})
	}
	t.Run("tcp and udp on one fixed host port", func(t *testing.T) {
		_, err := appForCreate([]byte(`{"id":"/a","container":{`+img+`,"portMappings":[{"containerPort":53,"hostPort":53,"protocol":"udp"},{"containerPort":53,"hostPort":53}]},`+bridge+`}`), testLimits)
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a container port's type error is a 400 with its path", func(t *testing.T) {
		_, err := appForCreate([]byte(`{"id":"/a","container":{`+img+`,"portMappings":[{"containerPort":"80"}]},`+bridge+`}`), testLimits)
		wantDetail(t, err, 400, "/container/portMappings(0)/containerPort", errExpNumber)
	})
}

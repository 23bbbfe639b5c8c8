package scheduler

import (
	"reflect"
	"strings"
	"testing"

	"github.com/atollhq/atoll/events"
)

// withService builds an app whose port definitions carry these service ports.
func withService(id string, ports ...int) events.App {
	a := app(id)
	for _, p := range ports {
		a.PortDefinitions = append(a.PortDefinitions, events.PortDefinition{Port: p})
	}
	return a
}

// bridgedService builds a bridged app whose port mappings carry these
// service ports.
func bridgedService(id string, ports ...int) events.App {
	a := app(id)
	a.Networks = []events.Network{{Mode: events.NetworkBridge}}
	a.Container = &events.Container{Type: events.ContainerDocker, Docker: &events.Docker{Image: "e"}}
	for _, p := range ports {
		a.Container.PortMappings = append(a.Container.PortMappings, events.PortMapping{ContainerPort: 80, ServicePort: p})
	}
	return a
}

func TestAssignServicePorts(t *testing.T) {
	tests := []struct {
		name  string
		state []events.App // apps already in the state
		app   events.App
		want  []int
	}{
		{
			name:  "lowest free, skipping other apps' ports",
			state: []events.App{withService("/other", 10000, 10002)},
			app:   withService("/web", 0, 0, 0),
			want:  []int{10001, 10003, 10004},
		},
		{
			name: "explicit ports stay and are not picked again",
			app:  withService("/web", 10000, 0),
			want: []int{10000, 10001},
		},
		{
			name:  "an update keeps the previous ports",
			state: []events.App{withService("/web", 10005, 10006)},
			app:   withService("/web", 0, 0),
			want:  []int{10005, 10006},
		},
		{
			name:  "an app's own previous ports do not block it",
			state: []events.App{withService("/web", 10000)},
			app:   withService("/web", 0, 0),
			want:  []int{10000, 10001},
		},
		{
			name:  "a new port definition gets a fresh port",
			state: []events.App{withService("/web", 10005)},
			app:   withService("/web", 0, 0),
			want:  []int{10005, 10000},
		},
		{
			// Index 0 lost its port to /other; its fresh pick must not take
			// 10000, which index 1 keeps.
			name: "kept ports are reserved before fresh picks",
			state: []events.App{
				withService("/web", 10001, 10000),
				withService("/other", 10001),
			},
			app:  withService("/web", 0, 0),
			want: []int{10002, 10000},
		},
		{
			name:  "a bridged app's mappings take service ports, and block them",
			state: []events.App{bridgedService("/other", 10000)},
			app:   bridgedService("/web", 0, 10002, 0),
			want:  []int{10001, 10002, 10003},
		},
		{
			name:  "a bridged app's update keeps its mappings' ports",
			state: []events.App{bridgedService("/web", 10007)},
			app:   bridgedService("/web", 0),
			want:  []int{10007},
		},
		{
			name: "no port definitions",
			app:  withService("/web"),
			want: []int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := events.NewState()
			for _, a := range tt.state {
				s.Apps[a.ID] = a
			}
			a := tt.app
			before := a.Container
			if before != nil {
				before = &events.Container{PortMappings: append([]events.PortMapping(nil), a.Container.PortMappings...)}
			}
			if err := AssignServicePorts(s, &a); err != nil {
				t.Fatal(err)
			}
			if before != nil && !reflect.DeepEqual(before.PortMappings, tt.app.Container.PortMappings) {
				t.Fatal("assigning wrote into the app's old port mappings, which the state may share")
			}
			if got := a.ServicePorts(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ports %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAssignServicePortsExhausted(t *testing.T) {
	var all []int
	for p := ServicePortMin; p <= ServicePortMax; p++ {
		all = append(all, p)
	}
	s := events.NewState()
	s.Apps["/hog"] = withService("/hog", all...)
	a := withService("/web", 0)
	err := AssignServicePorts(s, &a)
	if err == nil || !strings.Contains(err.Error(), "no free service port") {
		t.Fatalf("error %v, want no free service port", err)
	}
	if a.PortDefinitions[0].Port != 0 {
		t.Fatalf("app changed on error: %v", a.ServicePorts())
	}
}

// Apps in the state share their slices with copies handed out; assigning
// ports to a copy must not write through into the state.
func TestAssignServicePortsDoesNotWriteThrough(t *testing.T) {
	s := events.NewState()
	s.Apps["/web"] = withService("/web", 0)
	a := s.Apps["/web"]
	if err := AssignServicePorts(s, &a); err != nil {
		t.Fatal(err)
	}
	if got := s.Apps["/web"].PortDefinitions[0].Port; got != 0 {
		t.Fatalf("state's app now has port %d", got)
	}
}

// A ServicePorts kept up to date as apps come, change and go frees the
// ports of an app's earlier record and of a removed app, and assigns as
// a fresh count of the state would.
func TestServicePortsFollowsChanges(t *testing.T) {
	s := events.NewState()
	sp := NewServicePorts(s)
	put := func(a events.App) {
		s.Apps[a.ID] = a
		sp.Set(a)
	}
	put(withService("/a", 10000, 10001))
	put(withService("/b", 10002, 80))
	put(withService("/a", 10003)) // /a moved: 10000 and 10001 are free again
	delete(s.Apps, "/b")
	sp.Remove("/b") // 10002 and 80 are free again

	for _, tt := range []struct {
		app  events.App
		want []int
	}{
		{withService("/c", 0, 0, 0, 0), []int{10000, 10001, 10002, 10004}},
		{withService("/c", 80, 0), []int{80, 10000}},
		{withService("/a", 0, 0), []int{10003, 10000}},
	} {
		a, fresh := tt.app, tt.app
		if err := sp.Assign(s, &a); err != nil {
			t.Fatal(err)
		}
		if err := AssignServicePorts(s, &fresh); err != nil {
			t.Fatal(err)
		}
		if got := a.ServicePorts(); !reflect.DeepEqual(got, tt.want) || !reflect.DeepEqual(got, fresh.ServicePorts()) {
			t.Fatalf("%s: kept count gives %v, a fresh count %v; want %v", tt.app.ID, got, fresh.ServicePorts(), tt.want)
		}
	}
}

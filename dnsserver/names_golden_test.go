package dnsserver

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/atollhq/atoll/events"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/names/*.golden from the zone")

// TestNamesGolden: for each fixture state, the complete list of the task
// records the zone holds (the agent's, the leader's and the apex's left
// out), compared with testdata/names/<fixture>.golden. The golden files were
// checked by hand against Mesos-DNS's rules (MESOS_DNS_NAMES.md); the task
// hashes in them against an independent z-base-32 of SHA-1. With -update
// they are rewritten, to be reviewed again.
func TestNamesGolden(t *testing.T) {
	type task struct {
		id    string
		ip    string // "" for the agent's address
		ports []int
	}
	pd := func(name, proto string) events.PortDefinition {
		return events.PortDefinition{Name: name, Protocol: proto}
	}
	for _, tc := range []struct {
		fixture string
		appID   string
		ports   []events.PortDefinition
		tasks   []task
	}{
		// An app at the root: one name, no dashed twin.
		{"root", "/db", []events.PortDefinition{pd("", "tcp")}, []task{{"db.1", "", []int{31000}}}},
		// In a group: the dotted and the dashed name, two tasks.
		{"group", "/shop/web", []events.PortDefinition{pd("http", "tcp"), pd("admin", "tcp")},
			[]task{{"shop_web.1", "", []int{31000, 31001}}, {"shop_web.2", "", []int{31002, 31003}}}},
		// Deep groups.
		{"deep", "/a/b/c/svc", []events.PortDefinition{pd("", "tcp")}, []task{{"a_b_c_svc.1", "", []int{31000}}}},
		// udp, udp and tcp, a named udp port, and a task with an address
		// of its own.
		{"protocols", "/dns", []events.PortDefinition{pd("", "udp"), pd("both", "udp,tcp"), pd("", "")},
			[]task{{"dns.1", "192.168.5.5", []int{53, 54, 55}}}},
		// Odd characters in the app id and the port name.
		{"odd", "/My_Group/Web.App", []events.PortDefinition{pd("Admin_Port!", "tcp")}, []task{{"my-group_web.app.1", "", []int{31000}}}},
		// An id over 63 characters.
		{"long", "/" + strings.Repeat("x", 70), []events.PortDefinition{pd("", "tcp")}, []task{{"long.1", "", []int{31000}}}},
		// A bridged container: its address is on the agent's bridge, its
		// host ports on the agent, so every SRV record leads to the
		// agent's canonical name.
		{"bridged", "/echo", []events.PortDefinition{pd("http", "tcp"), pd("dns", "udp,tcp")},
			[]task{{"echo.1", "198.18.0.5", []int{31000, 31053}}}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			s := events.NewState()
			a := app(tc.appID)
			a.PortDefinitions = tc.ports
			if tc.fixture == "bridged" { // ports are the container's port mappings
				a.PortDefinitions = nil
				a.Networks = []events.Network{{Mode: events.NetworkBridge}}
				a.Container = &events.Container{Type: events.ContainerDocker, Docker: &events.Docker{Image: "echo:1"}}
				for _, p := range tc.ports {
					a.Container.PortMappings = append(a.Container.PortMappings,
						events.PortMapping{ContainerPort: 8080, Name: p.Name, Protocol: p.Protocol})
				}
			}
			changes := []events.Change{events.PutAgent(agent("a1-S1", "agent-1", "10.0.0.1")), events.PutApp(a)}
			for _, tk := range tc.tasks {
				ip := tk.ip
				if ip == "" {
					ip = "10.0.0.1"
				}
				changes = append(changes, events.PutTask(runningTask(tk.id, tc.appID, "a1-S1", ip, tk.ports...)))
			}
			commit(t, s, changes...)
			var got []string
			for _, line := range rrStrings(BuildZone(s, testConfig).Records()) {
				owner := line[:strings.IndexByte(line, ' ')]
				switch owner {
				case "mesos.", "ns1.mesos.", "slave.mesos.", "_slave._tcp.mesos.", "agent-1.slave.mesos.", "1.0.0.10.in-addr.arpa.":
					continue
				}
				got = append(got, line)
			}
			path := filepath.Join("testdata", "names", tc.fixture+".golden")
			if *updateGolden {
				if err := os.WriteFile(path, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			if !slices.Equal(got, want) {
				t.Errorf("records of %s:\n%s\nwant (%s):\n%s", tc.appID, strings.Join(got, "\n"), path, strings.Join(want, "\n"))
			}
		})
	}
}

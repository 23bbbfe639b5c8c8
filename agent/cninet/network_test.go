package cninet

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/internal/freeport"
)

// lab is a network namespace of the test's own that plays the agent's
// host: the bridge, iptables rules and sysctls live there, never in the
// machine's namespace. Addresses are from 198.18.0.0/15.
type lab struct {
	t      *testing.T
	hostNS string
	net    *Network
}

func newLab(t *testing.T) *lab {
	t.Helper()
	var why string
	if os.Geteuid() != 0 {
		why = "bridge networking needs root"
	} else if _, err := exec.LookPath("iptables"); err != nil {
		why = "iptables not installed (apt-get install iptables)"
	}
	if why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	dir := t.TempDir()
	hostNS := filepath.Join(dir, "host-ns")
	if err := NewNetNS(hostNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { RemoveNetNS(hostNS) })
	n, err := New(Options{Subnet: "198.18.10.0/24", StateDir: filepath.Join(dir, "state"), HostNetNS: hostNS})
	if err != nil {
		if os.Getenv("CI") != "true" && strings.Contains(err.Error(), "apt-get install") {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	return &lab{t: t, hostNS: hostNS, net: n}
}

// serve answers every TCP connection to :port inside netns with "hello
// <name>\n" until the test ends (a server in the container's place).
func (l *lab) serve(netns string, port int, name string) {
	l.t.Helper()
	var ln net.Listener
	err := InNetNS(netns, func() error {
		var err error
		ln, err = net.Listen("tcp", ":"+strconv.Itoa(port))
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello %s\n", name)
			c.Close()
		}
	}()
}

// get dials addr from the lab's host namespace and returns the line read.
func (l *lab) get(addr string) (string, error) {
	var line string
	err := InNetNS(l.hostNS, func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		line, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	return strings.TrimSpace(line), err
}

func (l *lab) nat() string {
	var out []byte
	InNetNS(l.hostNS, func() error {
		out, _ = exec.Command("iptables", "-t", "nat", "-S").CombinedOutput()
		return nil
	})
	return string(out)
}

func TestHostPortReachesTheContainerThroughTheBridge(t *testing.T) {
	l := newLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hostPort, err := freeport.Reserve("127.0.0.1", false)
	if err != nil {
		t.Fatal(err)
	}
	att, err := l.net.Attach(ctx, "web.1", []PortMapping{{HostPort: hostPort, ContainerPort: 8080}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.net.Detach(context.Background(), "web.1") })
	if _, subnet, _ := net.ParseCIDR("198.18.10.0/24"); !subnet.Contains(att.IP) {
		t.Fatalf("container address %v not in 198.18.10.0/24", att.IP)
	}
	l.serve(att.NetNS, 8080, "web.1")

	for _, addr := range []string{
		"127.0.0.1:" + strconv.Itoa(hostPort),               // HOST:hostPort from the agent's host
		att.Gateway.String() + ":" + strconv.Itoa(hostPort), // the host's bridge address
		net.JoinHostPort(att.IP.String(), "8080"),           // the container itself
	} {
		if got, err := l.get(addr); err != nil || got != "hello web.1" {
			t.Errorf("%s: %q, %v; want hello web.1", addr, got, err)
		}
	}

	// A second task gets its own address and port.
	hostPort2, _ := freeport.Reserve("127.0.0.1", false)
	att2, err := l.net.Attach(ctx, "web.2", []PortMapping{{HostPort: hostPort2, ContainerPort: 8080, Protocol: "tcp"}})
	if err != nil {
		t.Fatal(err)
	}
	l.serve(att2.NetNS, 8080, "web.2")
	if att2.IP.Equal(att.IP) {
		t.Fatalf("two tasks share %v", att.IP)
	}
	if got, err := l.get("127.0.0.1:" + strconv.Itoa(hostPort2)); err != nil || got != "hello web.2" {
		t.Errorf("second task: %q, %v", got, err)
	}

	// An agent that restarted finds the attachment again.
	again, err := New(l.net.o)
	if err != nil {
		t.Fatal(err)
	}
	adopted, err := again.Adopt("web.1")
	if err != nil || !adopted.IP.Equal(att.IP) || adopted.NetNS != att.NetNS {
		t.Fatalf("Adopt = %+v, %v; want %+v", adopted, err, att)
	}

	// Detach: the port is gone, the namespace file too, the address free.
	if err := again.Detach(ctx, "web.2"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.get("127.0.0.1:" + strconv.Itoa(hostPort2)); err == nil {
		t.Error("hostPort of a detached task still answers")
	}
	if _, err := os.Stat(att2.NetNS); !os.IsNotExist(err) {
		t.Errorf("namespace file after detach: %v", err)
	}
	if nat := l.nat(); strings.Contains(nat, "--dport "+strconv.Itoa(hostPort2)) {
		t.Errorf("DNAT for %d left after detach:\n%s", hostPort2, nat)
	}
	if _, err := os.Stat(filepath.Join(l.net.o.StateDir, "ipam", "atoll", att2.IP.String())); !os.IsNotExist(err) {
		t.Errorf("address %v still reserved: %v", att2.IP, err)
	}
	if err := again.Detach(ctx, "web.2"); err != nil {
		t.Errorf("second detach: %v", err)
	}
}

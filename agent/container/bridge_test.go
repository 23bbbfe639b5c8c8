package container

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/atollhq/atoll/agent/cninet"
	"github.com/atollhq/atoll/internal/freeport"
	"github.com/atollhq/atoll/internal/imagetest"
)

// Marathon's container/bridge: the container listens on containerPort in
// its own namespace; HOST:hostPort reaches it. The agent's "host" is a
// namespace of the test's own, so the machine's network stays untouched.
func TestBridgedContainerAnswersOnTheHostPort(t *testing.T) {
	e := newEnv(t)
	// busybox's httpd: no binary to build for this one.
	ref := e.push("httpd:1", v1.Config{
		Env: []string{"PATH=/bin"},
		Cmd: []string{"/bin/sh", "-c", `mkdir -p /www && echo "hello $MESOS_TASK_ID" > /www/index.html && exec httpd -f -p 8080 -h /www`},
	}, imagetest.File{Path: "bin/httpd", Link: "busybox"}, imagetest.File{Path: "bin/mkdir", Link: "busybox"})

	dir := t.TempDir()
	hostNS := filepath.Join(dir, "host-ns")
	if err := cninet.NewNetNS(hostNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cninet.RemoveNetNS(hostNS) })
	bridge, err := cninet.New(cninet.Options{Subnet: "198.18.10.0/24", StateDir: filepath.Join(dir, "cni"), HostNetNS: hostNS})
	if err != nil {
		t.Fatal(err)
	}
	hostPort, err := freeport.Reserve("127.0.0.1", false)
	if err != nil {
		t.Fatal(err)
	}
	d := e.driver()
	d.Bridge = bridge
	sandbox := t.TempDir()
	run, err := d.Start(ctxFor(t, time.Minute), Launch{
		Task:    Task{ID: "br.1", MemMB: 64, Sandbox: sandbox, CgroupsPath: cgroupParent + "/br.1", Env: map[string]string{"MESOS_TASK_ID": "br.1"}},
		Image:   ref,
		Bridged: true,
		Ports:   []cninet.PortMapping{{HostPort: hostPort, ContainerPort: 8080}},
		Stdout:  filepath.Join(sandbox, "stdout"), Stderr: filepath.Join(sandbox, "stderr"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Cleanup(context.Background(), "br.1") })
	if _, subnet, _ := net.ParseCIDR("198.18.10.0/24"); !subnet.Contains(run.IP) {
		t.Errorf("container address %v, want one in 198.18.10.0/24", run.IP)
	}
	addr := "127.0.0.1:" + strconv.Itoa(hostPort)
	deadline := time.Now().Add(20 * time.Second)
	for {
		body, err := httpGetIn(hostNS, addr)
		if err == nil {
			if strings.TrimSpace(body) != "hello br.1" {
				t.Errorf("GET %s answered %q, want task br.1", addr, body)
			}
			break
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(sandbox, "stderr"))
			t.Fatalf("GET %s from the host: %v; container stderr: %s", addr, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Killing the task removes the container, its port and namespace.
	if err := d.Stop(ctxFor(t, 30*time.Second), "br.1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	run.Wait()
	if _, err := d.Cleanup(ctxFor(t, 30*time.Second), "br.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := httpGetIn(hostNS, addr); err == nil {
		t.Error("the host port still answers after cleanup")
	}
	if _, err := os.Stat(bridge.NetNSPath("br.1")); !os.IsNotExist(err) {
		t.Errorf("task namespace after cleanup: %v", err)
	}
}

// httpGetIn sends GET / to addr from network namespace ns (http.Client
// dials on other goroutines, which would leave the namespace).
func httpGetIn(ns, addr string) (string, error) {
	var body string
	err := cninet.InNetNS(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var sb strings.Builder
		bufio.NewReader(resp.Body).WriteTo(&sb)
		body = sb.String()
		return nil
	})
	return body, err
}

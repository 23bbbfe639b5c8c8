package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/freeport"
	"github.com/atollhq/atoll/internal/natsauth"
)

// `atoll sidecar` runs DNS and HAProxy on one follower: the leader serves
// one snapshot, the NATS server sees one connection with one subscription
// to the events, and a task that starts is answered by both halves (its
// name in DNS, its service port through HAProxy).
func TestSidecarRunsBothHalvesOnOneFollower(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("haproxy not installed (apt-get install -y haproxy)")
		}
		t.Skip("haproxy not installed")
	}
	srv := eventstest.StartNATS(t)
	leader := eventstest.NewLeader()
	leader.Serve(t, srv.ConnectAs(t, natsauth.RoleMaster, "m1"), events.Subjects{})
	defer leader.Ticking(100 * time.Millisecond)()
	creds, err := srv.Authority.Issue(events.Subjects{}, natsauth.RoleSidecar, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	credsPath := filepath.Join(dir, "sidecar.creds")
	if err := natsauth.WriteCreds(credsPath, creds); err != nil {
		t.Fatal(err)
	}

	// The task: an HTTP server on loopback, behind service port
	// servicePort.
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "web.1 here")
	})}
	go func() { _ = hs.Serve(backend) }()
	defer hs.Close()
	servicePort := freeport.Port(t, "127.0.0.1")
	app := eventstest.App("/web", 1)
	app.PortDefinitions = []events.PortDefinition{{Port: servicePort, Protocol: "tcp"}}
	app.Labels = map[string]string{"HAPROXY_GROUP": "external"}
	leader.Commit(events.PutAgent(eventstest.Agent("a1")))
	leader.Commit(events.PutApp(app))

	dnsAddr := freeport.DNSAddr(t)
	args := []string{
		"--nats", srv.ClientURL(), "--nats-creds", credsPath,
		"--dns", dnsAddr, "--http", "", "--resolvers", "127.0.0.1:1",
		"--haproxy-bin", bin, "--haproxy-config", filepath.Join(dir, "haproxy", "haproxy.cfg"),
		"--bind-addr", "127.0.0.1", "--stats", freeport.Addr(t), "--http-port", strconv.Itoa(freeport.Port(t, "127.0.0.1")),
		"--metrics-addr", "", "--min-reload-interval", "100ms", "--log-level", "debug",
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() { done <- runSidecar(ctx, args, io.Discard, &stderr) }()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("atoll sidecar exited %d:\n%s", code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("atoll sidecar still running 10s after its context ended")
		}
		if t.Failed() {
			t.Logf("atoll sidecar's log:\n%s", stderr.String())
		}
	}()

	task := eventstest.Task("web.1", "/web", "a1", events.TaskRunning)
	_, port, _ := net.SplitHostPort(backend.Addr().String())
	hostPort, _ := strconv.Atoi(port)
	task.IPAddresses = []events.IPAddress{{IPAddress: "127.0.0.1", Protocol: "IPv4"}}
	task.Ports, task.ServicePorts = []int{hostPort}, []int{servicePort}
	// Once the sidecar follows (DNS answers the agent), the task starts.
	eventstest.WaitFor(t, 10*time.Second, func() error {
		ips, err := lookupA(dnsAddr, "slave.mesos.")
		if err == nil && !slices.Equal(ips, []string{"10.0.0.1"}) {
			err = fmt.Errorf("slave.mesos: %v, want the agent's 10.0.0.1", ips)
		}
		return err
	})
	leader.Commit(events.PutTask(task))

	eventstest.WaitFor(t, 10*time.Second, func() error {
		ips, err := lookupA(dnsAddr, "web.marathon.mesos.")
		if err != nil {
			return err
		}
		if !slices.Equal(ips, []string{"127.0.0.1"}) {
			return fmt.Errorf("DNS answers web.marathon.mesos with %v, want the task's 127.0.0.1", ips)
		}
		return nil
	})
	eventstest.WaitFor(t, 10*time.Second, func() error {
		body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", servicePort))
		if err != nil {
			return fmt.Errorf("HAProxy on the service port: %w", err)
		}
		if body != "web.1 here" {
			return fmt.Errorf("HAProxy on the service port answers %q", body)
		}
		return nil
	})

	if n := leader.Snapshots(); n != 1 {
		t.Errorf("the leader served %d snapshots to the sidecar, want 1 for both halves", n)
	}
	conns, subs := sidecarConns(t, srv)
	if conns != 1 || subs != 1 {
		t.Errorf("the sidecar holds %d NATS connections with %d subscriptions to the events, want 1 and 1", conns, subs)
	}
}

// sidecarConns counts the sidecar's connections to srv (those of its
// credential) and their subscriptions to the event subjects.
func sidecarConns(t *testing.T, srv *eventstest.NATS) (conns, eventSubs int) {
	t.Helper()
	cz, err := srv.Connz(&server.ConnzOptions{Subscriptions: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cz.Conns {
		if c.Name != "atoll-sidecar" && c.Name != "atoll-dns" && c.Name != "atoll-lb" {
			continue
		}
		conns++
		for _, s := range c.Subs {
			if s == (events.Subjects{}).AllEvents() {
				eventSubs++
			}
		}
	}
	return conns, eventSubs
}

func lookupA(addr, name string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, err := dns.Exchange(m, addr)
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("%s: %s", name, dns.RcodeToString[r.Rcode])
	}
	var ips []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	slices.Sort(ips)
	return ips, nil
}

func httpGet(url string) (string, error) {
	// No keep-alive: HAProxy's soft stop would wait for the idle
	// connection.
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

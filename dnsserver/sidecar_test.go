package dnsserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// runTestSidecar runs a sidecar on loopback port 0 following l, until the
// test ends; it returns once the zone holds l's state.
func runTestSidecar(t *testing.T, l *eventstest.Leader) *Sidecar {
	t.Helper()
	sc, err := NewSidecar(SidecarConfig{
		DNS:    Config{Addr: "127.0.0.1:0", Resolvers: []string{"127.0.0.1:1"}, UDPSockets: 1},
		Source: l, HTTPAddr: "127.0.0.1:0", Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	stopTicks := l.Ticking(100 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run still running 5s after its context ended")
		}
		stopTicks()
	})
	select {
	case <-sc.Ready():
	case err := <-done:
		t.Fatalf("Run ended before ready: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("not ready after 5s")
	}
	eventstest.WaitFor(t, 5*time.Second, func() error {
		if !sc.Follower().Synced() {
			return errNotYet("first snapshot")
		}
		return nil
	})
	return sc
}

type errNotYet string

func (e errNotYet) Error() string { return "waiting for " + string(e) }

func sidecarA(t *testing.T, sc *Sidecar, name string) ([]string, error) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, err := dns.Exchange(m, sc.DNSAddr().String())
	if err != nil {
		return nil, err
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

func sidecarGet(t *testing.T, sc *Sidecar, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + sc.HTTPAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestSidecarFollowsServesAndStops(t *testing.T) {
	l := httpTestLeader()
	sc := runTestSidecar(t, l)

	ips, err := sidecarA(t, sc, "nginx.web.marathon.mesos.")
	if err != nil || !slices.Equal(ips, []string{"10.1.0.1", "10.1.0.2"}) {
		t.Fatalf("A nginx.web: %v, %v", ips, err)
	}
	if code, body := sidecarGet(t, sc, "/v1/hosts/nginx.web.marathon.mesos"); code != 200 || !strings.Contains(body, "10.1.0.2") {
		t.Fatalf("/v1/hosts: %d %s", code, body)
	}

	// An event reaches DNS without a new snapshot.
	task := eventstest.Task("web_nginx.4", "/web/nginx", "agent-a", events.TaskRunning)
	task.IPAddresses = []events.IPAddress{{IPAddress: "10.1.0.9", Protocol: "IPv4"}}
	l.Commit(events.PutTask(task))
	eventstest.WaitFor(t, 5*time.Second, func() error {
		ips, err := sidecarA(t, sc, "nginx.web.marathon.mesos.")
		if err != nil {
			return err
		}
		if !slices.Contains(ips, "10.1.0.9") {
			return errNotYet("10.1.0.9 in " + strings.Join(ips, ","))
		}
		return nil
	})

	_, metrics := sidecarGet(t, sc, "/metrics")
	for _, want := range []string{"atoll_dns_synced 1", "atoll_dns_resyncs_total 0", "atoll_dns_snapshot_age_seconds ", "atoll_dns_zone_records "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestSidecarCountsResyncs(t *testing.T) {
	l := httpTestLeader()
	sc := runTestSidecar(t, l)
	l.NewEpoch() // a new leader: the follower must take a new snapshot
	eventstest.WaitFor(t, 5*time.Second, func() error {
		_, metrics := sidecarGet(t, sc, "/metrics")
		if !strings.Contains(metrics, "atoll_dns_resyncs_total 1") {
			return errNotYet("atoll_dns_resyncs_total 1")
		}
		return nil
	})
}

// The attack of issue 11: a client that may publish on the event subjects
// sends the next seq with a task address of its choosing; the leader's
// real event with that seq is then a duplicate. The next sync tick's
// digest shows the sidecar's state is not the leader's: it resyncs, answers
// the real addresses again, and counts the resync.
func TestSidecarUndoesForgedEvent(t *testing.T) {
	l := httpTestLeader()
	sc := runTestSidecar(t, l)

	evil := l.State().Tasks["web_nginx.1"]
	evil.IPAddresses = []events.IPAddress{{IPAddress: "203.0.113.66", Protocol: "IPv4"}}
	l.Inject(events.PutTask(evil).Stamp(l.State(), l.Epoch(), eventstest.T0))
	l.Commit(events.PutApp(eventstest.App("/other", 1)))

	eventstest.WaitFor(t, 5*time.Second, func() error {
		_, metrics := sidecarGet(t, sc, "/metrics")
		if !strings.Contains(metrics, "atoll_dns_resyncs_total 1") {
			return errNotYet("atoll_dns_resyncs_total 1")
		}
		ips, err := sidecarA(t, sc, "nginx.web.marathon.mesos.")
		if err != nil {
			return err
		}
		if !slices.Equal(ips, []string{"10.1.0.1", "10.1.0.2"}) {
			return errNotYet("the real addresses, not " + strings.Join(ips, ","))
		}
		return nil
	})
}

func TestSidecarHTTPPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = NewSidecar(SidecarConfig{
		DNS:    Config{Addr: "127.0.0.1:0"},
		Source: eventstest.NewLeader(), HTTPAddr: ln.Addr().String(),
	})
	if err == nil || !strings.Contains(err.Error(), "HTTP API") {
		t.Fatalf("NewSidecar on a taken HTTP port: %v, want an HTTP API error", err)
	}
}

func TestSidecarNeedsASource(t *testing.T) {
	if _, err := NewSidecar(SidecarConfig{DNS: Config{Addr: "127.0.0.1:0"}}); err == nil {
		t.Fatal("NewSidecar without a source: no error")
	}
	l := eventstest.NewLeader()
	both := SidecarConfig{DNS: Config{Addr: "127.0.0.1:0"}, Source: l, Follower: &events.Follower{Source: l}}
	if _, err := NewSidecar(both); err == nil || !strings.Contains(err.Error(), "one of the two") {
		t.Fatalf("NewSidecar with a source and a shared follower: %v, want a refusal", err)
	}
}

// A sidecar on a shared follower answers from it: the follower's owner
// runs it with the sidecar's Handler among its members, and the sidecar's
// metrics read that follower.
func TestSidecarOnSharedFollower(t *testing.T) {
	l := httpTestLeader()
	stopTicks := l.Ticking(100 * time.Millisecond)
	defer stopTicks()
	f := &events.Follower{Source: l}
	sc, err := NewSidecar(SidecarConfig{
		DNS:      Config{Addr: "127.0.0.1:0", Resolvers: []string{"127.0.0.1:1"}, UDPSockets: 1},
		Follower: f, HTTPAddr: "127.0.0.1:0", Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	other := &eventstest.Mirror{}
	f.Handler = events.Fanout{sc.Handler(), other}
	eventstest.Start(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	<-sc.Ready()

	task := eventstest.Task("web_nginx.4", "/web/nginx", "agent-a", events.TaskRunning)
	task.IPAddresses = []events.IPAddress{{IPAddress: "10.1.0.9", Protocol: "IPv4"}}
	l.Commit(events.PutTask(task))
	eventstest.WaitFor(t, 5*time.Second, func() error {
		ips, err := sidecarA(t, sc, "nginx.web.marathon.mesos.")
		if err != nil {
			return err
		}
		if !slices.Equal(ips, []string{"10.1.0.1", "10.1.0.2", "10.1.0.9"}) {
			return errNotYet("10.1.0.9 beside the others in " + strings.Join(ips, ","))
		}
		return nil
	})
	other.WaitEqual(t, l)
	if n := l.Snapshots(); n != 1 {
		t.Errorf("%d snapshot requests for the DNS server and another member, want 1", n)
	}
	_, metrics := sidecarGet(t, sc, "/metrics")
	if !strings.Contains(metrics, "atoll_dns_synced 1") {
		t.Errorf("/metrics does not read the shared follower: no atoll_dns_synced 1")
	}
}

func TestChangeClock(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newChangeClock(nopHandler{}, func() time.Time { return now })
	now = now.Add(3 * time.Second)
	if got := c.age(); got != 3*time.Second {
		t.Fatalf("age before any snapshot = %s, want the 3s since start", got)
	}
	c.Reset(events.NewState())
	now = now.Add(time.Second)
	if got := c.age(); got != time.Second {
		t.Fatalf("age after a snapshot = %s, want 1s", got)
	}
	c.Applied(events.NewState(), events.Event{})
	if got := c.age(); got != 0 {
		t.Fatalf("age right after an event = %s, want 0", got)
	}
}

type nopHandler struct{}

func (nopHandler) Reset(*events.State)                 {}
func (nopHandler) Applied(*events.State, events.Event) {}

// Command natscost measures what NATS authentication and TLS cost on the
// event path: a leader publishes task events and a follower (a sidecar's
// events.Follower on its own connection, as the DNS and LB sidecars run it)
// applies them. For each setup — an open server (the baseline, as atoll ran
// before issue 11; atoll itself no longer runs one), JWT/nkeys
// authentication as atoll runs it, and authentication with TLS — it prints
// the publish → applied latency (p50, p99, max) at a steady rate and the
// time to apply a burst.
//
//	go run ./bench/natscost [-events 5000] [-rate 2000] [-burst 20000]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/bench/internal/leader"
	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/natsbus"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/natsenv"
)

func main() {
	n := flag.Int("events", 5000, "task events timed at the steady rate")
	rate := flag.Int("rate", 2000, "events per second at the steady rate")
	burst := flag.Int("burst", 20000, "events in the burst")
	apps := flag.Int("apps", 1000, "apps (3 tasks each) in the state the follower holds")
	flag.Parse()
	fmt.Printf("event path: leader publish → follower applied, %d events at %d/s, then a burst of %d; state of %d apps × 3 tasks\n\n",
		*n, *rate, *burst, *apps)
	fmt.Println("| NATS | p50 | p99 | max | burst of", *burst, "applied in | burst events/s |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, mode := range []string{"open (no auth, baseline)", "auth (JWT/nkeys)", "auth + TLS"} {
		r, err := measure(mode, *n, *rate, *burst, *apps)
		if err != nil {
			fmt.Fprintln(os.Stderr, "natscost:", mode+":", err)
			os.Exit(1)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %.0f |\n", mode, ms(r.p50), ms(r.p99), ms(r.max), ms(r.burst),
			float64(*burst)/r.burst.Seconds())
	}
}

type result struct{ p50, p99, max, burst time.Duration }

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

// connectFunc dials the server as role.
type connectFunc func(role natsauth.Role, name string) (*nats.Conn, error)

func start(mode, dir string) (connectFunc, func(), error) {
	if mode == "open (no auth, baseline)" {
		srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, MaxPayload: 8 << 20})
		if err != nil {
			return nil, nil, err
		}
		go srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			return nil, nil, fmt.Errorf("open server not ready")
		}
		return func(natsauth.Role, string) (*nats.Conn, error) { return nats.Connect(srv.ClientURL()) }, srv.Shutdown, nil
	}
	env, err := natsenv.Start(dir, mode == "auth + TLS")
	if err != nil {
		return nil, nil, err
	}
	return func(role natsauth.Role, name string) (*nats.Conn, error) { return env.Connect(role, name) }, env.Shutdown, nil
}

func measure(mode string, n, rate, burst, apps int) (result, error) {
	dir, err := os.MkdirTemp("", "atoll-natscost")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	connect, stop, err := start(mode, filepath.Join(dir, "auth"))
	if err != nil {
		return result{}, err
	}
	defer stop()
	leaderNC, err := connect(natsauth.RoleMaster, "bench-leader")
	if err != nil {
		return result{}, err
	}
	defer leaderNC.Close()
	l, err := leader.New(leaderNC)
	if err != nil {
		return result{}, err
	}
	defer l.Close()
	if err := l.Commit(events.PutAgent(events.Agent{ID: "a1", Hostname: "h1", IP: "127.0.0.2", State: events.AgentActive})); err != nil {
		return result{}, err
	}
	for i := range apps {
		id := fmt.Sprintf("/bench/app%04d", i)
		cs := []events.Change{events.PutApp(events.App{ID: id, Instances: 3, Cmd: "x"})}
		for k := range 3 {
			cs = append(cs, events.PutTask(task(id, k, 31000+k)))
		}
		if err := l.Commit(cs...); err != nil {
			return result{}, err
		}
	}

	followerNC, err := connect(natsauth.RoleSidecar, "bench")
	if err != nil {
		return result{}, err
	}
	defer followerNC.Close()
	h := &recorder{applied: map[uint64]time.Time{}, want: map[uint64]chan struct{}{}}
	f := &events.Follower{Source: &natsbus.Source{NC: followerNC}, Handler: h}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = f.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for !f.Synced() {
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("follower not synced after 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Steady rate: each event's publish time against its applied time.
	sent := make(map[uint64]time.Time, n)
	every := time.Second / time.Duration(rate)
	next := time.Now()
	var last uint64
	for i := range n {
		time.Sleep(time.Until(next))
		next = next.Add(every)
		seq := l.Seq() + 1
		sent[seq] = time.Now()
		if err := l.Commit(events.PutTask(task(fmt.Sprintf("/bench/app%04d", i%apps), i%3, 32000+i%1000))); err != nil {
			return result{}, err
		}
		last = seq
	}
	if err := h.wait(last, 30*time.Second); err != nil {
		return result{}, err
	}
	var lat []time.Duration
	h.mu.Lock()
	for seq, at := range sent {
		lat = append(lat, h.applied[seq].Sub(at))
	}
	h.mu.Unlock()
	slices.Sort(lat)

	// Burst: as fast as the leader can publish.
	start := time.Now()
	for i := range burst {
		if err := l.Commit(events.PutTask(task(fmt.Sprintf("/bench/app%04d", i%apps), i%3, 33000+i%1000))); err != nil {
			return result{}, err
		}
	}
	if err := h.wait(l.Seq(), 60*time.Second); err != nil {
		return result{}, err
	}
	return result{
		p50: lat[len(lat)/2], p99: lat[len(lat)*99/100], max: lat[len(lat)-1],
		burst: time.Since(start),
	}, nil
}

func task(appID string, k, port int) events.Task {
	id := fmt.Sprintf("%s.%d", appID[1:], k)
	return events.Task{ID: id, AppID: appID, AgentID: "a1", Host: "h1", State: events.TaskRunning, Ports: []int{port},
		IPAddresses: []events.IPAddress{{IPAddress: "127.0.0.2", Protocol: "IPv4"}}}
}

// recorder notes when each event was applied.
type recorder struct {
	mu      sync.Mutex
	applied map[uint64]time.Time
	want    map[uint64]chan struct{}
}

func (r *recorder) Reset(*events.State) {}

func (r *recorder) Applied(_ *events.State, e events.Event) {
	now := time.Now()
	r.mu.Lock()
	r.applied[e.Seq] = now
	if ch, ok := r.want[e.Seq]; ok {
		close(ch)
		delete(r.want, e.Seq)
	}
	r.mu.Unlock()
}

func (r *recorder) wait(seq uint64, timeout time.Duration) error {
	r.mu.Lock()
	if _, ok := r.applied[seq]; ok {
		r.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	r.want[seq] = ch
	r.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("event %d not applied after %s", seq, timeout)
	}
}

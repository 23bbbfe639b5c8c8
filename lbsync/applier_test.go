package lbsync

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/templates"
)

func TestSplitReplies(t *testing.T) {
	cmds := []string{"set server b/s1 addr 10.0.0.2 port 31005", "set server b/s1 state ready", "set server b/nope state ready",
		"del map /m a", "show map /m", "set map /m a c", "set server b/s1 state bogus"}
	raw := "IP changed from '127.0.0.1' to '10.0.0.2', port changed from '1' to '31005' by 'stats socket command'\n\n" +
		"\n" + "No such server.\n\n" + "Key not found.\n\n" + "0x55 a b\n\n" + "\n" +
		"'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"
	got, err := splitReplies(raw, len(cmds))
	if err != nil {
		t.Fatal(err)
	}
	wantErr := []bool{false, false, true, true, false, false, true}
	for i, r := range got {
		if replyIsError(cmds[i], r) != wantErr[i] {
			t.Errorf("%q → %q: error %v", cmds[i], r, !wantErr[i])
		}
	}
	if got[4] != "0x55 a b\n" || got[1] != "" {
		t.Errorf("replies %q", got)
	}
	if _, err := splitReplies("x\n\n", 2); err == nil {
		t.Error("short output accepted")
	}
}

func TestParseShowProc(t *testing.T) {
	info, err := parseShowProc("#<PID>          <type>          <reloads>       <uptime>        <version>      \n" +
		"12808           master          2 [failed: 0]   0d00h10m17s     2.6.12\n# workers\n12900           worker          0   0d00h00m01s 2.6.12\n" +
		"# old workers\n12811           worker          1   0d00h10m17s 2.6.12\n# programs\n\n")
	if err != nil || info.MasterPID != 12808 || info.MasterReloads != 2 || fmt.Sprint(info.Workers) != "[12900]" || fmt.Sprint(info.OldWorkers) != "[12811]" {
		t.Errorf("%+v %v", info, err)
	}
}

// backendServer is a task: an HTTP server answering its name.
func backendServer(t *testing.T, name string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

type lbHarness struct {
	t     *testing.T
	dir   string
	w     *world
	cfg   Config
	a     *HAProxyApplier
	prev  *Result
	svc   int
	ports map[string]int // task id → port
}

func newLBHarness(t *testing.T) *lbHarness {
	bin := haproxyBin(t)
	dir := t.TempDir()
	w := newWorld()
	w.s.Agents["a1"] = events.Agent{ID: "a1", IP: "127.0.0.1", State: events.AgentActive}
	h := &lbHarness{t: t, dir: dir, w: w, svc: freePort(t), ports: map[string]int{}}
	w.app("/echo", []int{h.svc}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_BIND_ADDR": "127.0.0.1", "HAPROXY_0_MODE": "http"})
	h.cfg = Config{BindAddr: "127.0.0.1", HTTPPort: freePort(t), StatsBind: "127.0.0.1:" + strconv.Itoa(freePort(t)),
		MapPath: filepath.Join(dir, "hosts.map"), SocketPath: filepath.Join(dir, "admin.sock"), HardStopAfter: "5s"}
	h.a = &HAProxyApplier{Config: h.cfg, Bin: bin, ConfigPath: filepath.Join(dir, "haproxy.cfg")}
	t.Cleanup(func() { h.a.Close() })
	return h
}

// tasks makes the running tasks of /echo exactly ids, starting servers.
func (h *lbHarness) tasks(ids ...string) {
	for id, task := range h.w.s.Tasks {
		if task.AppID == "/echo" {
			delete(h.w.s.Tasks, id)
		}
	}
	for _, id := range ids {
		if h.ports[id] == 0 {
			h.ports[id] = backendServer(h.t, id)
		}
		h.w.task("/echo", id, "a1", h.ports[id])
	}
}

func (h *lbHarness) apply(set *templates.Set) (Plan, error) {
	h.t.Helper()
	if set == nil {
		set = templates.MustDefault()
	}
	r, err := RenderNext(h.prev, h.w.s, h.cfg, set)
	if err != nil {
		h.t.Fatal(err)
	}
	plan := Diff(h.prev, &r)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.a.Apply(ctx, h.prev, &r, plan); err != nil {
		return plan, err
	}
	h.prev = &r
	return plan, nil
}

// get does one request on a new connection through HAProxy.
func get(port int) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), nil
}

// waitServed polls until requests reach exactly want (every request
// succeeding), or fails at the deadline.
func (h *lbHarness) waitServed(port int, want ...string) {
	h.t.Helper()
	sort.Strings(want)
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		seen := map[string]bool{}
		ok := true
		for i := 0; i < 4*len(want); i++ {
			body, err := get(port)
			if err != nil {
				last, ok = err.Error(), false
				break
			}
			seen[body] = true
		}
		if ok {
			var got []string
			for s := range seen {
				got = append(got, s)
			}
			sort.Strings(got)
			last = strings.Join(got, ",")
			if last == strings.Join(want, ",") {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("traffic through :%d never reached exactly %v (last: %s)", port, want, last)
}

func TestApplierOnHAProxy(t *testing.T) {
	h := newLBHarness(t)
	ctx := context.Background()
	h.tasks("t1", "t2")
	if _, err := h.apply(nil); err != nil {
		t.Fatal(err)
	}
	p := h.a.Process()
	if p == nil || p.WorkerPID() == 0 {
		t.Fatal("no haproxy after the first Apply")
	}
	h.waitServed(h.svc, "t1", "t2")
	worker, reloads := p.WorkerPID(), p.Reloads()

	// Runtime API: replies and state.
	st, err := h.a.Runtime().ShowServersState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ready := 0
	for _, s := range st {
		if strings.HasPrefix(s.Server, "echo_") && !s.Maint() {
			ready++
		}
	}
	if ready != 2 {
		t.Errorf("%d ready servers, want 2: %+v", ready, st)
	}
	if _, err := h.a.Runtime().Exec(ctx, []string{"show info", "set server nope/nope state ready"}); err == nil || !strings.Contains(err.Error(), "No such") {
		t.Errorf("error reply not reported: %v", err)
	}

	// Batches split over several connections still answer in order.
	be := "echo_" + strconv.Itoa(h.svc)
	var many []string
	for i := 0; i < 30; i++ {
		many = append(many, "set server "+be+"/"+be+"-8 state maint", "show servers state "+be)
	}
	small := &Runtime{SocketPath: h.cfg.SocketPath, MaxLine: 100}
	replies, err := small.Exec(ctx, many)
	if err != nil || len(replies) != len(many) || replies[0] != "" || !strings.Contains(replies[59], be+"-8") {
		t.Fatalf("batched Exec: %v %d replies", err, len(replies))
	}

	// Scale within the slots: commands only.
	for _, ids := range [][]string{{"t1", "t2", "t3", "t4"}, {"t4"}, {"t4", "t5", "t6"}} {
		h.tasks(ids...)
		plan, err := h.apply(nil)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Reload || len(plan.Commands) == 0 {
			t.Fatalf("scale to %v: plan %+v", ids, plan)
		}
		h.waitServed(h.svc, ids...)
		if p.WorkerPID() != worker || p.Reloads() != reloads {
			t.Fatalf("scaling reloaded: worker %d→%d reloads %d→%d", worker, p.WorkerPID(), reloads, p.Reloads())
		}
		if info, err := p.ShowProc(ctx); err != nil || info.MasterReloads != 0 || len(info.Workers) != 1 || info.Workers[0] != worker {
			t.Fatalf("show proc after scaling: %+v %v", info, err)
		}
	}
	if err := h.a.WaitWritten(); err != nil {
		t.Error(err)
	}
	disk, _ := os.ReadFile(h.a.ConfigPath)
	if string(disk) != h.prev.Config {
		t.Error("config on disk is not the applied one")
	}

	// A new app needs a reload: new worker, both serve.
	svc2 := freePort(t)
	h.w.app("/other", []int{svc2}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_BIND_ADDR": "127.0.0.1", "HAPROXY_0_MODE": "http"})
	h.w.task("/other", "o1", "a1", backendServer(t, "o1"))
	plan, err := h.apply(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Reload {
		t.Fatal("new app without reload")
	}
	if p.WorkerPID() == worker || p.Reloads() != reloads+1 {
		t.Errorf("reload: worker %d→%d reloads %d→%d", worker, p.WorkerPID(), reloads, p.Reloads())
	}
	h.waitServed(svc2, "o1")
	h.waitServed(h.svc, "t4", "t5", "t6")
	t.Logf("reload: worker %d → %d, master reloads %d", worker, p.WorkerPID(), p.Reloads())
	worker = p.WorkerPID()

	// A broken template: haproxy -c rejects it, nothing changes.
	tdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(tdir, templates.BackendHead), []byte("\nbackend {{.Backend}}\n  balance nonsense\n  mode {{.Mode}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad, err := templates.Load(tdir)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(h.a.ConfigPath)
	if _, err := h.apply(bad); err == nil || !strings.Contains(err.Error(), "balance") {
		t.Fatalf("broken config applied: %v", err)
	}
	after, _ := os.ReadFile(h.a.ConfigPath)
	if string(after) != string(before) {
		t.Error("broken candidate changed the live file")
	}
	if p.WorkerPID() != worker {
		t.Error("broken candidate reloaded")
	}
	h.waitServed(h.svc, "t4", "t5", "t6")
	h.waitServed(svc2, "o1")

	// Close soft-stops HAProxy.
	if err := h.a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Error("haproxy still running after Close")
	}
	if _, err := get(h.svc); err == nil {
		t.Error("still serving after Close")
	}
}

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/atollhq/atoll/internal/natsauth"
)

// Helpers of the health check and deployment tests (issue 5).

// hcCheck is an HTTP check of GET /health on the task's first port.
func hcCheck(grace, interval, maxFailures int) map[string]any {
	return map[string]any{"protocol": "HTTP", "path": "/health", "portIndex": 0,
		"gracePeriodSeconds": grace, "intervalSeconds": interval, "timeoutSeconds": 1,
		"maxConsecutiveFailures": maxFailures, "delaySeconds": 0}
}

// hcResult is one health check result of a task, as the API shows it.
type hcResult struct {
	Alive               bool    `json:"alive"`
	ConsecutiveFailures int     `json:"consecutiveFailures"`
	FirstSuccess        *string `json:"firstSuccess"`
	LastFailure         *string `json:"lastFailure"`
	LastFailureCause    string  `json:"lastFailureCause"`
	TaskID              string  `json:"taskId"`
}

// hcTask is a task with what the API says of its health and version.
type hcTask struct {
	apiTask
	Version            string     `json:"version"`
	Healthy            *bool      `json:"healthy"`
	HealthCheckResults []hcResult `json:"healthCheckResults"`
}

func (t hcTask) healthy() bool { return t.Healthy != nil && *t.Healthy }

func (t hcTask) addr() string {
	if len(t.IPAddresses) == 0 || len(t.Ports) == 0 {
		return ""
	}
	return net.JoinHostPort(t.IPAddresses[0].IPAddress, strconv.Itoa(t.Ports[0]))
}

func hcHealth(t hcTask) string {
	if t.Healthy == nil {
		return "unknown"
	}
	return strconv.FormatBool(*t.Healthy)
}

// hcAppView is the part of /v2/apps/{id} these tests read.
type hcAppView struct {
	ID              string            `json:"id"`
	Version         string            `json:"version"`
	Instances       int               `json:"instances"`
	Env             map[string]string `json:"env"`
	HealthChecks    []map[string]any  `json:"healthChecks"`
	UpgradeStrategy struct {
		MinimumHealthCapacity float64 `json:"minimumHealthCapacity"`
		MaximumOverCapacity   float64 `json:"maximumOverCapacity"`
	} `json:"upgradeStrategy"`
	TasksRunning   int `json:"tasksRunning"`
	TasksHealthy   int `json:"tasksHealthy"`
	TasksUnhealthy int `json:"tasksUnhealthy"`
	Deployments    []struct {
		ID string `json:"id"`
	} `json:"deployments"`
}

// hcApp reads an app and its tasks; an error says which read failed.
func (c *cluster) hcApp(appID string) (hcAppView, []hcTask, error) {
	var app struct {
		App hcAppView `json:"app"`
	}
	code, data := c.do("GET", "/v2/apps"+appID, nil)
	if code != 200 {
		return hcAppView{}, nil, fmt.Errorf("GET /v2/apps%s: %d %s", appID, code, data)
	}
	if err := json.Unmarshal(data, &app); err != nil {
		return hcAppView{}, nil, fmt.Errorf("GET /v2/apps%s: %v", appID, err)
	}
	var tasks struct {
		Tasks []hcTask `json:"tasks"`
	}
	code, data = c.do("GET", "/v2/apps"+appID+"/tasks", nil)
	if code != 200 {
		return hcAppView{}, nil, fmt.Errorf("GET /v2/apps%s/tasks: %d %s", appID, code, data)
	}
	if err := json.Unmarshal(data, &tasks); err != nil {
		return hcAppView{}, nil, fmt.Errorf("GET /v2/apps%s/tasks: %v", appID, err)
	}
	sort.Slice(tasks.Tasks, func(i, j int) bool { return tasks.Tasks[i].ID < tasks.Tasks[j].ID })
	return app.App, tasks.Tasks, nil
}

func hcIDs(ts []hcTask) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	sort.Strings(out)
	return out
}

func hcByID(ts []hcTask) map[string]hcTask {
	m := make(map[string]hcTask, len(ts))
	for _, t := range ts {
		m[t.ID] = t
	}
	return m
}

func hcDescribe(ts []hcTask) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("%s %s healthy=%s version=%s", t.ID, t.State, hcHealth(t), t.Version))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// hcWaitHealthy waits until no deployment runs and the app has exactly n
// tasks, all running, healthy and of the app's current version, each with
// a process of its own and no other process.
func (c *cluster) hcWaitHealthy(appID string, n int, timeout time.Duration) (hcAppView, []hcTask) {
	c.t.Helper()
	var app hcAppView
	var ts []hcTask
	c.waitFor(timeout, fmt.Sprintf("%s: %d running healthy tasks of the current version, no deployment", appID, n), func() (bool, string) {
		if ok, st := c.lbDeploymentsDone(); !ok {
			return false, st
		}
		var err error
		app, ts, err = c.hcApp(appID)
		if err != nil {
			return false, err.Error()
		}
		good := 0
		for _, t := range ts {
			if t.State == "TASK_RUNNING" && t.healthy() && t.Version == app.Version {
				good++
			}
		}
		procs := len(taskPIDs(c.dir, appID))
		return good == n && len(ts) == n && procs == n && app.TasksHealthy == n,
			fmt.Sprintf("app version %s, tasksHealthy %d, %d processes, tasks %s", app.Version, app.TasksHealthy, procs, hcDescribe(ts))
	})
	return app, ts
}

// hcReply is the echo server's answer to GET /.
type hcReply struct {
	TaskID  string `json:"taskId"`
	AppID   string `json:"appId"`
	Version string `json:"version"`
}

// hcGet asks url once with client and decodes the echo reply.
func hcGet(ctx context.Context, client *http.Client, url string) (hcReply, error) {
	var r hcReply
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return r, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return r, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return r, err
	}
	if resp.StatusCode != 200 {
		return r, fmt.Errorf("status %d: %.200q", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &r); err != nil || r.TaskID == "" {
		return r, fmt.Errorf("not an echo reply: %.200q", body)
	}
	return r, nil
}

// hcSample sends n GETs to addr, each on a new connection, and returns
// the replies and the failures.
func hcSample(addr string, n int) (replies []hcReply, failures []string) {
	// lbLoad's timeout: on a busy machine (2 CPUs, -race, the load)
	// a reply may take seconds; what is checked is who answers.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		r, err := hcGet(context.Background(), client, "http://"+addr+"/")
		if err != nil {
			failures = append(failures, err.Error())
			continue
		}
		replies = append(replies, r)
	}
	return replies, failures
}

// hcPost POSTs to a task's echo server directly.
func hcPost(addr, path string) error {
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Post("http://"+addr+path, "text/plain", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("POST %s%s: status %d", addr, path, resp.StatusCode)
	}
	return nil
}

// hcWatch asks url continuously (half the clients on keep-alive
// connections, half on new ones) and checks every echo reply with ok;
// it complements lbLoad, which only checks that a reply is an echo's.
type hcWatch struct {
	ok      func(hcReply) error
	replies atomic.Int64
	failed  atomic.Int64
	wrong   atomic.Int64 // replies ok refused
	mu      sync.Mutex
	bad     []string // replies ok refused (the first 20)
	errs    []string // failed requests (the first 20)
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func hcStartWatch(url string, clients int, ok func(hcReply) error) *hcWatch {
	w := &hcWatch{ok: ok}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	for i := range clients {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: i%2 == 1, MaxIdleConnsPerHost: 1,
		}}
		w.wg.Go(func() {
			defer client.CloseIdleConnections()
			for ctx.Err() == nil {
				r, err := hcGet(ctx, client, url)
				if ctx.Err() != nil {
					return
				}
				w.mu.Lock()
				if err != nil {
					w.failed.Add(1)
					if len(w.errs) < 20 {
						w.errs = append(w.errs, time.Now().UTC().Format("15:04:05.000")+" "+err.Error())
					}
				} else {
					w.replies.Add(1)
					if err := w.ok(r); err != nil {
						w.wrong.Add(1)
						if len(w.bad) < 20 {
							w.bad = append(w.bad, time.Now().UTC().Format("15:04:05.000")+" "+err.Error())
						}
					}
				}
				w.mu.Unlock()
				// A pace, not a wait for anything: the watcher checks
				// contents, lbLoad makes the load.
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	return w
}

func (w *hcWatch) stop() {
	w.cancel()
	w.wg.Wait()
}

// hcEvent is one event of /v2/events.
type hcEvent struct {
	Type string
	Data map[string]any
	At   time.Time
}

// hcEvents follows the master's /v2/events with a plain HTTP client, as
// a Marathon consumer would, and keeps every event.
type hcEvents struct {
	mu     sync.Mutex
	events []hcEvent
	err    error
}

func hcFollowEvents(c *cluster) *hcEvents {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", c.api+"/v2/events", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		cancel()
		c.t.Fatalf("GET /v2/events: %v", err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		cancel()
		c.t.Fatalf("GET /v2/events: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &hcEvents{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		var typ, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if typ != "" || data != "" {
					e := hcEvent{Type: typ, At: time.Now()}
					_ = json.Unmarshal([]byte(data), &e.Data)
					s.mu.Lock()
					s.events = append(s.events, e)
					s.mu.Unlock()
				}
				typ, data = "", ""
			case strings.HasPrefix(line, "event:"):
				typ = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
			}
		}
		s.mu.Lock()
		s.err = sc.Err()
		if s.err == nil {
			s.err = io.EOF
		}
		s.mu.Unlock()
	}()
	c.t.Cleanup(func() { cancel(); <-done })
	return s
}

// find returns the first event of type typ whose data match.
func (s *hcEvents) find(typ string, match func(map[string]any) bool) (hcEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e.Type == typ && (match == nil || match(e.Data)) {
			return e, true
		}
	}
	return hcEvent{}, false
}

// summary counts the events by type, and says why the stream ended.
func (s *hcEvents) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[string]int{}
	for _, e := range s.events {
		n[e.Type]++
	}
	return fmt.Sprintf("%v (stream error: %v)", n, s.err)
}

// hcStartDNS runs `atoll dns` against c's NATS on a free loopback port and
// returns a digger for it.
func hcStartDNS(c *cluster) digger {
	c.t.Helper()
	addr := freeDNSAddr(c.t)
	p := c.start("dns", append(append([]string{"dns"}, c.nats.args(natsauth.RoleSidecar, "dns-node")...), "--dns", addr, "--http", "",
		"--resolvers", "127.0.0.1:1")...)
	c.t.Cleanup(func() {
		c.signal(p, syscall.SIGTERM)
		if c.t.Failed() {
			data, _ := os.ReadFile(p.log)
			c.t.Logf("---- atoll dns log (last 4 KB) ----\n%s", tail(data, 4096))
		}
	})
	host, port, _ := net.SplitHostPort(addr)
	d := digger{t: c.t, host: host, port: port}
	c.waitFor(10*time.Second, "atoll dns to answer", func() (bool, string) {
		r, err := d.try("leader.mesos", "A")
		if err != nil {
			return false, err.Error()
		}
		return r.Status == "NOERROR", r.Status
	})
	return d
}

// hcDNSTargets is what DNS says of an app named name ("hc.it" for
// /it/hc): the host:port of its SRV records (targets resolved through
// ADDITIONAL) and its A records, both sorted.
func hcDNSTargets(d digger, name string) (srv, a []string, err error) {
	r, err := d.try("_"+name+"._tcp.marathon.mesos", "SRV")
	if err != nil {
		return nil, nil, err
	}
	addrs := map[string][]string{}
	for _, rr := range records(r.Additional, "A") {
		addrs[rr.Name] = append(addrs[rr.Name], rr.Data[0])
	}
	for _, rr := range records(r.Answer, "SRV") {
		if len(rr.Data) < 4 {
			return nil, nil, fmt.Errorf("bad SRV record %s", rr)
		}
		ip := "?"
		if len(addrs[rr.Data[3]]) == 1 {
			ip = addrs[rr.Data[3]][0]
		}
		srv = append(srv, net.JoinHostPort(ip, rr.Data[2]))
	}
	slices.Sort(srv)
	ra, err := d.try(name+".marathon.mesos", "A")
	if err != nil {
		return nil, nil, err
	}
	return srv, data(records(ra.Answer, "A")), nil
}

// hcAddrs is the sorted host:port of tasks, and their IPs.
func hcAddrs(ts ...hcTask) (addrs, ips []string) {
	for _, t := range ts {
		addrs = append(addrs, t.addr())
		if !slices.Contains(ips, t.IPAddresses[0].IPAddress) {
			ips = append(ips, t.IPAddresses[0].IPAddress)
		}
	}
	slices.Sort(addrs)
	slices.Sort(ips)
	return addrs, ips
}

// hcDirect asks a task's own server, on a new connection each time.
var hcDirect = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// hcRefusal tells HAProxy's refusals from other answers that are no
// echo reply: a 503, or no HTTP answer at all (lbAsk writes HTTP answers
// as "status N: ...", transport errors as they come): the connection
// closed, reset or refused, however Go words it, or a request that timed
// out on a busy machine.
func hcRefusal(answer string) bool {
	return strings.HasPrefix(answer, "status 503") || !strings.HasPrefix(answer, "status ")
}

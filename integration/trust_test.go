package integration

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
)

// The attacks of issue 11, by a client on the network: with no credential,
// with a credential of another authority, with a valid credential of
// another role and with another agent's. Each must fail: nothing runs, no
// state changes, no secret is received, and the master (or, for what
// never reaches it, the NATS server) refuses and says so.

// attacker is a NATS connection that records what the server refused it.
type attacker struct {
	name string
	nc   *nats.Conn
	mu   sync.Mutex
	errs []string
}

func newAttacker(c *cluster, role natsauth.Role, name string) *attacker {
	a := &attacker{name: string(role) + " " + name}
	a.nc = c.nats.connect(role, name, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		a.mu.Lock()
		a.errs = append(a.errs, err.Error())
		a.mu.Unlock()
	}))
	return a
}

func (a *attacker) refused(what string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.ContainsFunc(a.errs, func(e string) bool { return strings.Contains(e, what) })
}

func (a *attacker) publish(t *testing.T, subject string, v any) {
	t.Helper()
	data, _ := json.Marshal(v)
	if err := a.nc.Publish(subject, data); err != nil {
		t.Fatal(err)
	}
	if err := a.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// masterCounter reads one series of the master's /metrics (0 if absent).
func (c *cluster) masterCounter(series string) float64 {
	c.t.Helper()
	code, data := c.do("GET", "/metrics", nil)
	if code != 200 {
		c.t.Fatalf("GET /metrics: %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

type agentView struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	Active   bool   `json:"active"`
	PID      string `json:"pid"`
}

func (c *cluster) agentsByHost() map[string]agentView {
	c.t.Helper()
	var st struct {
		Slaves []agentView `json:"slaves"`
	}
	code, data := c.do("GET", "/master/state", nil)
	if code != 200 || json.Unmarshal(data, &st) != nil {
		c.t.Fatalf("GET /master/state: %d", code)
	}
	out := map[string]agentView{}
	for _, a := range st.Slaves {
		if _, dup := out[a.Hostname]; dup {
			c.t.Errorf("two agents named %s", a.Hostname)
		}
		out[a.Hostname] = a
	}
	return out
}

func TestNATSAttacksFail(t *testing.T) {
	c := startCluster(t, clusterOptions{agents: 2})
	app := echoApp("/it/secret", 2, []string{"hostname", "UNIQUE"})
	app["env"] = map[string]string{"DB_PASSWORD": "hunter2-secret"}
	c.mustDo("POST", "/v2/apps", app, 201, nil)
	before := c.waitRunning("/it/secret", 2, 30*time.Second)
	pidsBefore := taskPIDs(c.dir, "/it/secret")
	agentsBefore := c.agentsByHost()
	victim := agentsBefore["agent-1"]
	var victimTask apiTask
	for _, tk := range before {
		if tk.SlaveID == victim.ID {
			victimTask = tk
		}
	}
	if victimTask.ID == "" {
		t.Fatalf("no task on agent-1 among %v", ids(before))
	}
	d := hcStartDNS(c)
	c.waitFor(10*time.Second, "DNS answers the app", func() (bool, string) {
		r, err := d.try("secret.it.marathon.mesos", "A")
		return err == nil && len(records(r.Answer, "A")) == 2, fmt.Sprint(err)
	})
	marker := filepath.Join(c.dir, "pwned")
	subj := events.Subjects{}

	// No credential, or one of another authority: no connection at all.
	if nc, err := nats.Connect(c.nats.URL(), nats.RootCAs(c.nats.CA), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("connected to NATS without a credential")
	} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("no credential: err = %v, want an authorization error", err)
	}
	other, err := natsauth.NewAuthority("attacker")
	if err != nil {
		t.Fatal(err)
	}
	forgedCreds, _ := other.Issue(subj, natsauth.RoleMaster, "master-1")
	forged, _ := natsauth.ParseCreds(forgedCreds)
	if nc, err := nats.Connect(c.nats.URL(), append(forged.Options(), nats.RootCAs(c.nats.CA), nats.NoReconnect())...); err == nil {
		nc.Close()
		t.Fatal("connected with a master credential signed by another authority")
	}

	// Valid credentials of other roles, and another agent's: the server
	// drops what each may not publish and refuses what it may not hear.
	launch := events.LaunchRequest{Task: events.Task{ID: "evil.1", AppID: "/evil"}, Cmd: "touch " + marker}
	forgedTask := events.Task{ID: victimTask.ID, AppID: "/it/secret", AgentID: victim.ID, Host: "127.66.6.6",
		State: events.TaskRunning, IPAddresses: []events.IPAddress{{IPAddress: "127.66.6.6", Protocol: "IPv4"}}}
	for _, a := range []*attacker{
		newAttacker(c, natsauth.RoleAgent, "agent-2"),
		newAttacker(c, natsauth.RoleSidecar, "agent-1"),
		newAttacker(c, natsauth.RoleObserver, "cli"),
	} {
		pubs := []struct {
			subject string
			body    any
		}{
			{subj.Launch("agent-1"), launch},
			{subj.Register("agent-1"), events.RegisterRequest{AgentID: victim.ID, Hostname: "agent-1", IP: "127.66.6.6"}},
			{subj.Status("agent-1"), events.StatusUpdate{AgentID: victim.ID, TaskID: victimTask.ID, State: events.TaskFailed}},
			{subj.Event(events.TaskUpdated), events.Event{Epoch: 1, Seq: 1 << 20, Type: events.TaskUpdated, Task: &forgedTask}},
		}
		for _, p := range pubs {
			a.publish(t, p.subject, p.body)
			c.waitFor(5*time.Second, a.name+" refused publishing "+p.subject, func() (bool, string) {
				return a.refused(`Publish to "` + p.subject + `"`), ""
			})
		}
		for _, s := range []string{subj.Launch("agent-1"), "_INBOX.>", natsauth.InboxPrefix(natsauth.RoleMaster, "master-1") + ".>"} {
			if _, err := a.nc.SubscribeSync(s); err != nil {
				t.Fatal(err)
			}
			_ = a.nc.Flush()
			c.waitFor(5*time.Second, a.name+" refused subscribing to "+s, func() (bool, string) {
				return a.refused(`Subscription to "` + s + `"`), ""
			})
		}
	}

	// agent-2's own credential, on its own subjects, about agent-1: the
	// master refuses and counts.
	evil := newAttacker(c, natsauth.RoleAgent, "agent-2")
	refusals := func() float64 {
		n := 0.0
		for _, r := range []string{"hostname_not_credential", "other_agents_id", "other_agents_task"} {
			n += c.masterCounter(`atoll_master_refused_total{reason="` + r + `"}`)
		}
		return n
	}
	before0 := refusals()
	request := func(subject string, body any) map[string]any {
		t.Helper()
		data, _ := json.Marshal(body)
		msg, err := evil.nc.Request(subject, data, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		var reply map[string]any
		_ = json.Unmarshal(msg.Data, &reply)
		return reply
	}
	for _, body := range []events.RegisterRequest{
		{Hostname: "agent-1", IP: "127.66.6.6"},                     // another node's name
		{AgentID: victim.ID, Hostname: "agent-2", IP: "127.66.6.6"}, // another node's id
	} {
		if reply := request(subj.Register("agent-2"), body); reply["agentId"] != nil || reply["error"] == nil {
			t.Errorf("register %+v as agent-2: reply %v, want a refusal", body, reply)
		}
	}
	for _, body := range []events.StatusUpdate{
		{AgentID: victim.ID, TaskID: victimTask.ID, State: events.TaskFailed},                  // as agent-1
		{AgentID: agentsBefore["agent-2"].ID, TaskID: victimTask.ID, State: events.TaskFailed}, // agent-1's task
	} {
		if reply := request(subj.Status("agent-2"), body); reply["code"] != string(events.AckRefused) {
			t.Errorf("status %+v from agent-2: reply %v, want refused", body, reply)
		}
	}
	evil.publish(t, subj.Heartbeat("agent-2"), events.Heartbeat{AgentID: victim.ID})
	c.waitFor(5*time.Second, "the master counting 5 refusals", func() (bool, string) {
		n := refusals() - before0
		return n >= 5, fmt.Sprintf("%v counted", n)
	})

	// Nothing ran, nothing changed, nothing leaked.
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the forged launch ran: %v", err)
	}
	after := c.tasks("/it/secret")
	if !sameTaskIDs(before, after) || countState(after, "TASK_RUNNING") != 2 {
		t.Errorf("tasks after the attacks %v (running %d), before %v", ids(after), countState(after, "TASK_RUNNING"), ids(before))
	}
	if pids := taskPIDs(c.dir, "/it/secret"); !slices.Equal(sortedInts(pids), sortedInts(pidsBefore)) {
		t.Errorf("task pids %v, before %v", pids, pidsBefore)
	}
	if got := c.agentsByHost(); len(got) != 2 || got["agent-1"] != victim {
		t.Errorf("agents after the attacks %+v, before %+v", got, agentsBefore)
	}
	r, err := d.try("secret.it.marathon.mesos", "A")
	if err != nil || slices.Contains(data(records(r.Answer, "A")), "127.66.6.6") || len(records(r.Answer, "A")) != 2 {
		t.Errorf("DNS after the forged event: %v %v", data(records(r.Answer, "A")), err)
	}
	log, _ := os.ReadFile(c.master.log)
	if !strings.Contains(string(log), "refused a message its sender may not send") {
		t.Error("the master's log does not say what it refused")
	}

	// The cluster still works: a scale-up launches on agent-1.
	c.mustDo("PUT", "/v2/apps/it/secret", map[string]any{"instances": 3, "constraints": [][]string{}}, 200, nil)
	c.waitRunning("/it/secret", 3, 30*time.Second)
}

func sortedInts(s []int) []int {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

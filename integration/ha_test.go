package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
)

// The leading master dies: another takes over within the ZooKeeper
// session timeout plus 2 s, with every app and task it had, no task
// restarted, the agents back with it; standbys forward to whoever leads.
func TestHALeaderKilled(t *testing.T) {
	const session = 2 * time.Second
	c, _ := startHACluster(t, haOptions{masters: 3, agents: 3, session: session})
	old := slices.Index(c.masterAddrs, strings.TrimPrefix(c.api, "http://"))
	standby := (old + 1) % 3

	// Through a standby: a write is forwarded, the event stream and the
	// Mesos endpoints are redirected to the leader.
	c.api = "http://" + c.masterAddrs[standby]
	c.mustDo("POST", "/v2/apps", echoApp("/it/ha", 3), 201, nil)
	checkRedirect(t, c.api+"/v2/events?event_type=status_update_event", http.StatusFound, "http://"+c.masterAddrs[old]+"/v2/events?event_type=status_update_event")
	checkRedirect(t, c.api+"/master/state", http.StatusTemporaryRedirect, "http://"+c.masterAddrs[old]+"/master/state")

	c.api = "http://" + c.masterAddrs[old]
	before := c.waitRunning("/it/ha", 3, 30*time.Second)
	pidsBefore := taskPIDs(c.dir, "/it/ha")
	slices.Sort(pidsBefore)

	killed := time.Now()
	c.signal(c.masters[old], syscall.SIGKILL)
	next := c.waitLeader(session+2*time.Second, old)
	t.Logf("master-%d killed; master-%d leads %s later (session timeout %s)", old+1, next+1, time.Since(killed).Round(time.Millisecond), session)

	c.api = "http://" + c.masterAddrs[next]
	after := c.tasks("/it/ha")
	if !slices.Equal(ids(after), ids(before)) || countState(after, "TASK_RUNNING") != 3 {
		t.Fatalf("tasks on the new leader %v (%d running), want %v running", ids(after), countState(after, "TASK_RUNNING"), ids(before))
	}
	pids := taskPIDs(c.dir, "/it/ha")
	slices.Sort(pids)
	if !slices.Equal(pids, pidsBefore) {
		t.Fatalf("task processes %v after the failover, want the same %v (none restarted)", pids, pidsBefore)
	}
	c.waitFor(10*time.Second, "the 3 agents active with the new leader", func() (bool, string) {
		n := c.activeAgents()
		return n == 3, fmt.Sprintf("%d active", n)
	})

	// The new leader writes, and the remaining standby forwards to it.
	other := 3 - old - next
	c.api = "http://" + c.masterAddrs[other]
	c.mustDo("PUT", "/v2/apps/it/ha", map[string]any{"instances": 4}, 200, nil)
	c.api = "http://" + c.masterAddrs[next]
	ts := c.waitRunning("/it/ha", 4, 30*time.Second)
	for _, id := range ids(before) {
		if !slices.Contains(ids(ts), id) {
			t.Fatalf("task %s gone after scaling on the new leader: %v", id, ids(ts))
		}
	}
}

// A leader that is paused (SIGSTOP, as a partition or a long GC pause
// would) while another takes over must never change the state after the
// new leader's first write: when it runs again, its stale writes are
// refused by ZooKeeper and it turns standby.
func TestHAPausedLeaderIsFenced(t *testing.T) {
	const session = 2 * time.Second
	// A short agent timeout makes the paused leader, once it runs again,
	// want to write at once: every agent looks silent to it.
	c, _ := startHACluster(t, haOptions{masters: 3, agents: 1, session: session, agentTimeout: time.Second})
	old := slices.Index(c.masterAddrs, strings.TrimPrefix(c.api, "http://"))
	c.mustDo("POST", "/v2/apps", echoApp("/it/fence", 1), 201, nil)
	c.waitRunning("/it/fence", 1, 30*time.Second)

	rec := recordEvents(t, c.nats.connect(natsauth.RoleObserver, "recorder"))
	// The leader's sync tick (every second) shows the old epoch first.
	c.waitFor(5*time.Second, "an event of the first leader's epoch", func() (bool, string) {
		n := rec.count()
		return n > 0, fmt.Sprintf("%d events", n)
	})
	p := c.masters[old].cmd.Process
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	next := c.waitLeader(session+5*time.Second, old)
	t.Logf("master-%d stopped; master-%d leads %s later", old+1, next+1, time.Since(stopped).Round(time.Millisecond))

	c.api = "http://" + c.masterAddrs[next]
	c.mustDo("PUT", "/v2/apps/it/fence", map[string]any{"instances": 2}, 200, nil)
	c.waitRunning("/it/fence", 2, 30*time.Second)

	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	c.waitFor(20*time.Second, "the resumed master to be a standby naming the new leader", func() (bool, string) {
		v := c.viewOf(old)
		return v.err == nil && !v.elected && v.leader == c.masterAddrs[next], fmt.Sprintf("%+v", v)
	})
	// Whatever it tried while it caught up is over by now: it forwards
	// writes to the new leader like any standby.
	c.api = "http://" + c.masterAddrs[old]
	c.mustDo("PUT", "/v2/apps/it/fence", map[string]any{"instances": 3}, 200, nil)
	c.api = "http://" + c.masterAddrs[next]
	c.waitRunning("/it/fence", 3, 30*time.Second)

	newEpoch, stale, staleSyncs := rec.staleAfterNewEpoch()
	if newEpoch == 0 {
		t.Fatal("no event of a new epoch was seen")
	}
	if len(stale) > 0 {
		t.Fatalf("state events of an older epoch after epoch %d began: %v", newEpoch, stale)
	}
	// Not even a sync tick: its lease ran out while it was stopped.
	if staleSyncs > 0 {
		t.Fatalf("%d sync ticks of the old epoch after epoch %d began", staleSyncs, newEpoch)
	}
	// The agent stayed active and its tasks running in the stored state:
	// the paused leader's view (every agent silent) never got in.
	if n := c.activeAgents(); n != 1 {
		t.Fatalf("%d active agents on the new leader, want 1", n)
	}
	if ts := c.tasks("/it/fence"); countState(ts, "TASK_RUNNING") != 3 {
		t.Fatalf("tasks %v, want 3 running", ts)
	}
}

// checkRedirect asserts that GET url answers status with Location want.
func checkRedirect(t *testing.T, url string, status int, want string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != status || resp.Header.Get("Location") != want {
		t.Fatalf("GET %s: %d Location %q, want %d %q", url, resp.StatusCode, resp.Header.Get("Location"), status, want)
	}
}

// eventRecorder keeps every event published on NATS, in arrival order.
type eventRecorder struct {
	mu     sync.Mutex
	events []events.Event
}

func recordEvents(t *testing.T, nc *nats.Conn) *eventRecorder {
	t.Helper()
	r := &eventRecorder{}
	_, err := nc.Subscribe(events.Subjects{}.AllEvents(), func(m *nats.Msg) {
		var e events.Event
		if json.Unmarshal(m.Data, &e) == nil {
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *eventRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// staleAfterNewEpoch finds the first epoch above the first event's, and
// returns the state events of older epochs that arrived after it began,
// and how many older sync ticks did.
func (r *eventRecorder) staleAfterNewEpoch() (newEpoch uint64, stale []string, staleSyncs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return 0, nil, 0
	}
	first := r.events[0].Epoch
	for _, e := range r.events {
		if newEpoch == 0 {
			if e.Epoch > first {
				newEpoch = e.Epoch
			}
			continue
		}
		if e.Epoch < newEpoch {
			if e.Type == events.Sync {
				staleSyncs++
				continue
			}
			stale = append(stale, fmt.Sprintf("%d-%d %s %s", e.Epoch, e.Seq, e.Type, e.ID))
		}
	}
	return newEpoch, stale, staleSyncs
}

package master

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/natsauth"
)

// A task's logs through the API: the leader asks the task's agent on its
// files subject (with the master's credential; the agent answers with
// its own), and answers in Mesos's /files/read shape, behind the API's
// credentials. An unknown task is a 404, an agent that does not answer a
// 504 that says so.
func TestTaskLogsThroughTheAgent(t *testing.T) {
	ns := eventstest.StartNATS(t)
	m, err := New(Config{
		NC: eventstest.Connect(t, ns), Store: &MemStore{}, HTTPCredentials: "ops:secret",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	establishForTest(t, m)
	agentID := addAgent(t, m, "h1", "127.0.0.11")
	task := eventstest.Task("web.1", "/web", agentID, events.TaskRunning)
	gone := eventstest.Task("web.2", "/web", "agent-gone", events.TaskRunning)
	if err := m.commit(events.PutTask(task), events.PutTask(gone)); err != nil {
		t.Fatal(err)
	}
	h := m.Handler()

	stdout := "hello from the container\nsecond line\n"
	asked := make(chan events.FileReadRequest, 4)
	nc := ns.ConnectAs(t, natsauth.RoleAgent, "h1")
	sub, err := nc.Subscribe(m.cfg.Subjects.Files("h1"), func(msg *nats.Msg) {
		var req events.FileReadRequest
		_ = json.Unmarshal(msg.Data, &req)
		asked <- req
		var reply events.FileReadReply
		switch {
		case req.TaskID != "web.1":
			reply = events.FileReadReply{Code: events.AckUnknownTask, Error: "no task " + req.TaskID}
		case req.Path != "stdout":
			reply = events.FileReadReply{Code: events.AckBadRequest, Error: "path " + req.Path + " is not served"}
		case req.Offset == -1:
			reply = events.FileReadReply{Offset: int64(len(stdout))}
		default:
			end := min(int64(len(stdout)), req.Offset+req.Length)
			reply = events.FileReadReply{Data: stdout[req.Offset:end], Offset: req.Offset}
		}
		data, _ := json.Marshal(reply)
		_ = msg.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	const path = "/v2/tasks/web.1/files/read"
	if res := call(t, h, "GET", path+"?path=stdout&offset=0&length=5", ""); res.status != 401 {
		t.Fatalf("without credentials: %d, want 401", res.status)
	}
	get := func(target string) response {
		t.Helper()
		return call(t, h, "GET", target, "", "ops", "secret")
	}
	res := get(path + "?path=stdout&offset=6&length=4")
	if res.status != 200 || strings.TrimSpace(string(res.body)) != `{"data":"from","offset":6}` {
		t.Fatalf("read: %d %s", res.status, res.body)
	}
	if req := <-asked; req != (events.FileReadRequest{TaskID: "web.1", Path: "stdout", Offset: 6, Length: 4}) {
		t.Fatalf("the agent was asked %+v", req)
	}
	if res := get(path + "?path=stdout"); res.status != 200 || strings.TrimSpace(string(res.body)) != `{"data":"","offset":37}` {
		t.Fatalf("size (no offset): %d %s", res.status, res.body)
	}
	if res := get(path + "?path=stdout&offset=-1"); res.status != 200 || !strings.Contains(string(res.body), `"offset":37`) {
		t.Fatalf("size (offset -1): %d %s", res.status, res.body)
	}
	for _, tc := range []struct {
		target string
		status int
		msg    string
	}{
		{"/v2/tasks/web.404/files/read?path=stdout", 404, "does not exist"},
		{path + "?path=../../etc/passwd", 400, "is not served"},
		{path, 400, "path=value"},
		{path + "?path=stdout&offset=x", 400, "offset"},
		{path + "?path=stdout&length=-2", 400, "length"},
		{"/v2/tasks/web.2/files/read?path=stdout", 504, "did not answer"},
	} {
		res := get(tc.target)
		if res.status != tc.status || !strings.Contains(string(res.body), tc.msg) {
			t.Errorf("GET %s: %d %s, want %d with %q", tc.target, res.status, res.body, tc.status, tc.msg)
		}
	}
	// The agent goes: once the server has its unsubscription, the
	// request finds no responder at once.
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if res := get(path + "?path=stdout"); res.status != 504 || !strings.Contains(string(res.body), "no agent is listening") {
		t.Fatalf("agent gone: %d %s", res.status, res.body)
	}
}

// A standby sends a logs read on to the leader, which alone may ask
// agents (and whose state names the task's agent).
func TestTaskLogsForwardedByStandbys(t *testing.T) {
	if got := standbyRoute("GET", "/v2/tasks/web.1/files/read"); got != routeForward {
		t.Fatalf("standby route %v, want forward", got)
	}
}

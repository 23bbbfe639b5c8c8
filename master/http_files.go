package master

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// GET /v2/tasks/{taskId}/files/read?path=stdout&offset=0&length=N: a
// task's sandbox logs, as Mesos's /files/read answers them ({"data",
// "offset"}; offset -1, or none, asks for the file's size). The master
// asks the task's agent on its files subject (events.Subjects.Files,
// which only a master's credential may publish to); like every /v2 call
// it is behind the API's credentials, and a standby forwards it to the
// leader. Mesos serves /files/read on the agent, which atoll's agents do
// not listen for: the path is under the task instead.

const (
	// filesTimeout bounds the wait for the agent: a read of at most
	// maxFileRead bytes from its disk.
	filesTimeout = 5 * time.Second
	// maxFileRead is what one call reads when it names no length, and at
	// most (the agent may cap it lower).
	maxFileRead = 1 << 20
)

// readTaskFile serves GET /v2/tasks/{taskId}/files/read.
func (m *Master) readTaskFile(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("taskId")
	q := r.URL.Query()
	req := events.FileReadRequest{TaskID: id, Path: q.Get("path"), Offset: -1, Length: maxFileRead}
	if req.Path == "" {
		writeMessage(w, http.StatusBadRequest, "Expecting 'path=value' in query.") // Mesos's
		return
	}
	for _, p := range []struct {
		name string
		dst  *int64
		min  int64
	}{{"offset", &req.Offset, -1}, {"length", &req.Length, 0}} {
		if s := q.Get(p.name); s != "" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil || v < p.min {
				writeMessage(w, http.StatusBadRequest, fmt.Sprintf("Failed to parse %s: %q is not an integer of at least %d", p.name, s, p.min))
				return
			}
			*p.dst = v
		}
	}
	req.Length = min(req.Length, maxFileRead)
	var node string
	known := false
	m.View(func(s *events.State) {
		if t, ok := s.Tasks[id]; ok {
			known = true
			node = t.AgentID
			if a, ok := s.Agents[t.AgentID]; ok {
				node = a.Hostname
			}
		}
	})
	if !known {
		writeMessage(w, http.StatusNotFound, fmt.Sprintf("Task '%s' does not exist", id))
		return
	}
	reply, err := m.askFiles(r.Context(), node, req)
	switch {
	case err != nil:
		writeMessage(w, http.StatusGatewayTimeout, fmt.Sprintf("The agent on %s did not answer for task '%s': %v", node, id, err))
	case reply.Code == events.AckUnknownTask:
		writeMessage(w, http.StatusNotFound, fmt.Sprintf("Task '%s' has no sandbox on its agent %s: %s", id, node, reply.Error))
	case reply.Code == events.AckBadRequest:
		writeMessage(w, http.StatusBadRequest, reply.Error)
	case reply.Code != "":
		writeMessage(w, http.StatusBadGateway, fmt.Sprintf("The agent on %s refused to read %s of task '%s' (%s): %s", node, req.Path, id, reply.Code, reply.Error))
	default:
		writeJSON(w, http.StatusOK, struct {
			Data   string `json:"data"`
			Offset int64  `json:"offset"`
		}{reply.Data, reply.Offset})
	}
}

// askFiles sends req to node's agent and waits for its answer.
func (m *Master) askFiles(ctx context.Context, node string, req events.FileReadRequest) (events.FileReadReply, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return events.FileReadReply{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, filesTimeout)
	defer cancel()
	msg, err := m.cfg.NC.RequestWithContext(ctx, m.cfg.Subjects.Files(node), data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return events.FileReadReply{}, errors.New("no agent is listening there (it is down, or too old to serve files)")
	case errors.Is(err, context.DeadlineExceeded):
		return events.FileReadReply{}, fmt.Errorf("no answer within %s", filesTimeout)
	case err != nil:
		return events.FileReadReply{}, err
	}
	var reply events.FileReadReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return events.FileReadReply{}, fmt.Errorf("bad reply: %w", err)
	}
	return reply, nil
}

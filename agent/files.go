package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
)

// The files verb: the leader reads a task's logs from its sandbox, as
// Mesos's /files/read, for the API and `atoll task logs`. Who may ask:
// only a master's credential may publish on the agents' files subjects
// (internal/natsauth); the agent serves only the four log files, of any
// task whose sandbox it still has (a finished task's logs are the ones
// most wanted), and reads them without following a link: a task owns
// its sandbox and could put one there.

// servedFiles are the sandbox files the files verb reads.
var servedFiles = map[string]bool{"stdout": true, "stderr": true, "stdout.1": true, "stderr.1": true}

// maxFileRead caps one read's length.
const maxFileRead = 1 << 20

// handleFiles answers a FileReadRequest with a FileReadReply.
func (a *Agent) handleFiles(m *nats.Msg) {
	var req events.FileReadRequest
	var reply events.FileReadReply
	if err := json.Unmarshal(m.Data, &req); err != nil {
		reply.Code, reply.Error = events.AckBadRequest, "bad files request: "+err.Error()
	} else {
		reply = a.readFile(req)
	}
	data, _ := json.Marshal(reply)
	_ = m.Respond(data)
}

// readFile reads what req asks of a sandbox file.
func (a *Agent) readFile(req events.FileReadRequest) events.FileReadReply {
	refuse := func(code events.AckCode, format string, args ...any) events.FileReadReply {
		return events.FileReadReply{Code: code, Error: fmt.Sprintf(format, args...)}
	}
	if !servedFiles[req.Path] {
		return refuse(events.AckBadRequest, "path %q: only stdout, stderr, stdout.1 and stderr.1 are served", req.Path)
	}
	if checkTaskID(req.TaskID) != nil {
		return refuse(events.AckUnknownTask, "unknown task %q", req.TaskID)
	}
	dir := a.taskDir(req.TaskID)
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return refuse(events.AckUnknownTask, "unknown task %s (no sandbox on this agent)", req.TaskID)
	}
	if req.Offset < -1 || req.Length < 0 {
		return refuse(events.AckBadRequest, "offset %d, length %d: want offset ≥ -1 and length ≥ 0", req.Offset, req.Length)
	}
	f, size, err := openLog(filepath.Join(dir, req.Path))
	if errors.Is(err, fs.ErrNotExist) {
		// Not written yet (stdout.1 before the first rotation): empty,
		// as the task's files will be.
		return events.FileReadReply{Offset: max(req.Offset, 0)}
	}
	if err != nil {
		return refuse(events.AckBadRequest, "%s: %v", req.Path, err)
	}
	defer f.Close()
	if req.Offset == -1 {
		return events.FileReadReply{Offset: size}
	}
	n := req.Length
	if n == 0 || n > maxFileRead {
		n = maxFileRead
	}
	if req.Offset >= size {
		return events.FileReadReply{Offset: req.Offset}
	}
	buf := make([]byte, min(n, size-req.Offset))
	got, err := f.ReadAt(buf, req.Offset)
	if err != nil && !errors.Is(err, io.EOF) {
		return refuse(events.AckBadRequest, "%s: %v", req.Path, err)
	}
	return events.FileReadReply{Data: string(buf[:got]), Offset: req.Offset}
}

// openLog opens a sandbox log for reading: a regular file, not through a
// link, never blocking (a FIFO the task made), and returns its size.
func openLog(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, 0, errors.New("is a symbolic link")
	}
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

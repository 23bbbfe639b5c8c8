package events

// FileReadRequest reads part of a file in a task's sandbox, as Mesos's
// /files/read: Length bytes (the agent caps it) from Offset; Offset -1
// asks only for the file's size. Path is relative to the sandbox and
// names one of the files the agent serves (stdout, stderr and their
// rotated predecessors stdout.1, stderr.1).
type FileReadRequest struct {
	TaskID string `json:"taskId"`
	Path   string `json:"path"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
}

// FileReadReply is Mesos's /files/read answer: Data read at Offset (with
// Offset -1 asked: empty Data, Offset the file's size). A refusal has Code
// and Error (AckUnknownTask: no such task on the agent; AckBadRequest: a
// path the agent does not serve).
type FileReadReply struct {
	Data   string  `json:"data"`
	Offset int64   `json:"offset"`
	Code   AckCode `json:"code,omitempty"`
	Error  string  `json:"error,omitempty"`
}

package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// FileChunk is Mesos's /files/read answer: Data read at Offset; asked
// with offset -1, no data and Offset the file's size.
type FileChunk struct {
	Data   string `json:"data"`
	Offset int64  `json:"offset"`
}

// ReadTaskFile reads length bytes at offset of a file in a task's sandbox
// ("stdout", "stderr"), through the master and the task's agent (GET
// /v2/tasks/{id}/files/read). Offset -1 asks for the file's size.
func (c *Client) ReadTaskFile(ctx context.Context, taskID, path string, offset, length int64) (FileChunk, error) {
	q := url.Values{"path": {path}, "offset": {strconv.FormatInt(offset, 10)}}
	if length > 0 {
		q.Set("length", strconv.FormatInt(length, 10))
	}
	var out FileChunk
	err := c.Do(ctx, http.MethodGet, "/v2/tasks/"+taskID+"/files/read", q, nil, &out)
	return out, err
}

package main

// atoll task logs: a task's stdout or stderr, read from its sandbox
// through the master and the task's agent.

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/atollhq/atoll/client"
)

// logsChunk is what one request reads; logsPoll how often -f asks again.
const (
	logsChunk = 512 << 10
	logsPoll  = time.Second
)

func taskLogs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("atoll task logs", "atoll task logs <task-id> [--stderr] [-f] [--master URL]", stderr)
	useStderr := fs.Bool("stderr", false, "the task's stderr instead of its stdout")
	follow := fs.Bool("f", false, "keep printing what the task writes, until interrupted")
	pos, code, ok := parseCommand(fs, args, 1, 1)
	if !ok {
		return code
	}
	file := "stdout"
	if *useStderr {
		file = "stderr"
	}
	c := newClient(cf)
	if err := copyTaskFile(ctx, c, pos[0], file, *follow, stdout); err != nil && ctx.Err() == nil {
		return cliFail(stderr, fs.Name(), err)
	}
	return cliExitOK
}

// copyTaskFile writes the task's file to w from its start; with follow
// it then asks again every logsPoll for what was added, from the start
// again when the file shrank (the agent rotated it), until ctx ends.
func copyTaskFile(ctx context.Context, c *client.Client, taskID, file string, follow bool, w io.Writer) error {
	var at int64
	for {
		size, err := c.ReadTaskFile(ctx, taskID, file, -1, 0)
		if err != nil {
			return err
		}
		if size.Offset < at {
			at = 0 // rotated: the file is a new one
		}
		for at < size.Offset {
			chunk, err := c.ReadTaskFile(ctx, taskID, file, at, min(logsChunk, size.Offset-at))
			if err != nil {
				return err
			}
			if len(chunk.Data) == 0 {
				break // the agent has nothing more to give now
			}
			if _, err := io.WriteString(w, chunk.Data); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			at += int64(len(chunk.Data))
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(logsPoll):
		}
	}
}

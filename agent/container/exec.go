package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// Exec runs argv inside container id (its namespaces, root, user, env and
// limits, as the container's own process), as Mesos runs a COMMAND health
// check in the task's container. It returns the exit code and the
// combined output (the first 64 kB). When ctx ends the process gets
// SIGTERM (runc forwards it), then SIGKILL two seconds later.
func (r *Runtime) Exec(ctx context.Context, id string, argv []string) (int, []byte, error) {
	if len(argv) == 0 {
		return -1, nil, errors.New("exec: no command")
	}
	var out limitedBuffer
	out.max = 64 << 10
	cmd := exec.CommandContext(ctx, r.Binary, append([]string{"--root", r.Root, "exec", id}, argv...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return -1, out.Bytes(), fmt.Errorf("exec in %s: %w", id, ctx.Err())
	case errors.As(err, &ee):
		return ee.ExitCode(), out.Bytes(), nil
	case err != nil:
		return -1, out.Bytes(), fmt.Errorf("exec in %s: %w", id, err)
	}
	return 0, out.Bytes(), nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Stats is a container's resource usage, from its cgroups (for the UI's
// usage next to allocation).
type Stats struct {
	CPUNanos    uint64 // CPU time used since start
	MemoryBytes uint64 // memory in use now
	MemoryLimit uint64
	MemoryMax   uint64 // the most it used
	Pids        uint64
}

// Stats asks the runtime for container id's usage (runc events --stats).
func (r *Runtime) Stats(ctx context.Context, id string) (Stats, error) {
	out, err := r.call(ctx, "events", "--stats", id)
	if err != nil {
		return Stats{}, err
	}
	var ev struct {
		Data struct {
			CPU struct {
				Usage struct {
					Total uint64 `json:"total"`
				} `json:"usage"`
			} `json:"cpu"`
			Memory struct {
				Usage struct {
					Usage uint64 `json:"usage"`
					Max   uint64 `json:"max"`
					Limit uint64 `json:"limit"`
				} `json:"usage"`
			} `json:"memory"`
			Pids struct {
				Current uint64 `json:"current"`
			} `json:"pids"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &ev); err != nil {
		return Stats{}, fmt.Errorf("container %s: runc events: %w", id, err)
	}
	d := ev.Data
	return Stats{CPUNanos: d.CPU.Usage.Total, MemoryBytes: d.Memory.Usage.Usage, MemoryLimit: d.Memory.Usage.Limit,
		MemoryMax: d.Memory.Usage.Max, Pids: d.Pids.Current}, nil
}

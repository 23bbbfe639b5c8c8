// Package health runs Marathon's health checks against one task on behalf
// of the agent that runs it (DESIGN.md §4).
//
// Probe runs one check once (HTTP, HTTPS, TCP or COMMAND, with the MESOS_*
// names as aliases). Tracker is the pure part: it folds results into
// Marathon's per-check record (events.HealthCheckResult) with Marathon's
// grace-period rule, and says which results the master must hear about.
// Runner ties both to a clock: every check of a task on its interval, until
// its context ends.
package health

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/atollhq/atoll/events"
)

// Target is what the checks of one task probe.
type Target struct {
	// Host is the agent's advertised IP: the address the task's ports are
	// served on, the one DNS and HAProxy point at.
	Host string
	// Ports are the task's host ports, in order: portIndex picks one.
	Ports []int
	// Env, Dir and Credential are the task's environment, sandbox and
	// user (nil: the agent's own): a COMMAND check runs as the task would.
	Env        []string
	Dir        string
	Credential *syscall.Credential
	// Exec, when set, runs a COMMAND check inside the task's container
	// (its namespaces, root, user and env, as Mesos runs it for a
	// container task) and returns its exit status; Env, Dir and
	// Credential are then unused.
	Exec func(ctx context.Context, argv []string) (int, error)
}

// ErrIgnored is the outcome of a result Marathon discards: a 1xx answer to
// an HTTP check with ignoreHttp1xx. It leaves the check's record as it was.
var ErrIgnored = errors.New("health check result ignored")

// Probe runs check hc once against tg and gives up after timeout. It
// returns nil when the task is healthy, ErrIgnored, or the failure cause.
func Probe(ctx context.Context, hc events.HealthCheck, tg Target, timeout time.Duration) error {
	proto := strings.ToUpper(hc.Protocol)
	if proto == "COMMAND" {
		if hc.Command == nil || hc.Command.Value == "" {
			return errors.New("COMMAND health check without a command")
		}
		return probeCommand(ctx, hc.Command.Value, tg, timeout)
	}
	port, err := checkPort(hc, tg.Ports)
	if err != nil {
		return err
	}
	switch proto {
	case "HTTP", "MESOS_HTTP":
		return probeHTTP(ctx, "http", tg.Host, port, hc.Path, hc.IgnoreHTTP1xx, timeout)
	case "HTTPS", "MESOS_HTTPS":
		return probeHTTP(ctx, "https", tg.Host, port, hc.Path, hc.IgnoreHTTP1xx, timeout)
	case "TCP", "MESOS_TCP":
		return probeTCP(ctx, tg.Host, port, timeout)
	}
	return fmt.Errorf("unsupported health check protocol %q", hc.Protocol)
}

// checkPort is the port a check probes: `port` when set, else the task's
// port at portIndex (0 when unset), as Marathon picks it.
func checkPort(hc events.HealthCheck, ports []int) (int, error) {
	if hc.Port != nil && *hc.Port > 0 {
		return *hc.Port, nil
	}
	i := 0
	if hc.PortIndex != nil {
		i = *hc.PortIndex
	}
	if i < 0 || i >= len(ports) {
		return 0, fmt.Errorf("health check portIndex %d, but the task has %d port(s)", i, len(ports))
	}
	return ports[i], nil
}

// timeoutCause turns a probe error into a failure cause that says when the
// probe ran out of time rather than failed: ctx is the probe's own
// deadline, parent the caller's context.
func timeoutCause(parent, ctx context.Context, what string, timeout time.Duration, err error) error {
	if parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: timeout: no answer within %v", what, timeout)
	}
	return fmt.Errorf("%s: %w", what, err)
}

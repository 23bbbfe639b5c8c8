package lbsync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Runtime is a client of HAProxy's runtime API (the stats socket, level
// admin). Each Exec opens a connection per batch, as non-interactive mode
// answers one line and closes.
type Runtime struct {
	SocketPath string
	// MaxLine bounds one batch line: HAProxy reads a command line into one
	// buffer (tune.bufsize, 16384 in the default template). 8192 if 0.
	MaxLine int
	// Timeout bounds each connection when ctx has no deadline (5s if 0).
	Timeout time.Duration
}

// CommandError is a runtime API command whose reply is an error.
type CommandError struct {
	Command, Reply string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("runtime API %q: %s", e.Command, strings.TrimSpace(e.Reply))
}

// Exec sends cmds, joined with ";" into as few lines (connections) as
// MaxLine allows, and returns one reply per command (without its trailing
// blank line). Every reply that is an error is returned, joined, as
// *CommandErrors; the other commands have still run.
func (c *Runtime) Exec(ctx context.Context, cmds []string) ([]string, error) {
	max := c.MaxLine
	if max <= 0 {
		max = 8192
	}
	replies := make([]string, 0, len(cmds))
	var errs []error
	for start := 0; start < len(cmds); {
		end, size := start, 0
		for end < len(cmds) && (end == start || size+1+len(cmds[end]) < max) {
			size += 1 + len(escapeCmd(cmds[end]))
			end++
		}
		got, err := c.batch(ctx, cmds[start:end])
		if err != nil {
			return replies, err
		}
		for i, r := range got {
			if replyIsError(cmds[start+i], r) {
				errs = append(errs, &CommandError{Command: cmds[start+i], Reply: r})
			}
		}
		replies = append(replies, got...)
		start = end
	}
	return replies, errors.Join(errs...)
}

func escapeCmd(s string) string { return strings.ReplaceAll(s, ";", `\;`) }

func (c *Runtime) batch(ctx context.Context, cmds []string) ([]string, error) {
	raw, err := unixRoundTrip(ctx, c.SocketPath, c.Timeout, joinCmds(cmds), false)
	if err != nil {
		return nil, err
	}
	return splitReplies(raw, len(cmds))
}

func joinCmds(cmds []string) string {
	var b strings.Builder
	for i, s := range cmds {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(escapeCmd(s))
	}
	b.WriteByte('\n')
	return b.String()
}

// unixRoundTrip writes line to a unix socket and reads until it closes.
// halfClose shuts the write side down after the line (the master CLI waits
// for it before answering and closing).
func unixRoundTrip(ctx context.Context, path string, timeout time.Duration, line string, halfClose bool) (string, error) {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := d.DialContext(dctx, "unix", path)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(timeout)
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(conn, line); err != nil {
		return "", err
	}
	if halfClose {
		if uc, ok := conn.(*net.UnixConn); ok {
			_ = uc.CloseWrite()
		}
	}
	b, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		if ctx.Err() != nil {
			return string(b), ctx.Err()
		}
		return string(b), err
	}
	return string(b), nil
}

// splitReplies cuts the output of n commands: each reply is its text
// followed by an empty line, so an empty reply is a lone "\n".
func splitReplies(raw string, n int) ([]string, error) {
	out := make([]string, 0, n)
	rest := raw
	for i := 0; i < n; i++ {
		if strings.HasPrefix(rest, "\n") {
			out = append(out, "")
			rest = rest[1:]
			continue
		}
		j := strings.Index(rest, "\n\n")
		if j < 0 {
			return out, fmt.Errorf("runtime API: %d replies for %d commands: %q", len(out), n, raw)
		}
		out = append(out, rest[:j+1])
		rest = rest[j+2:]
	}
	if rest != "" {
		return out, fmt.Errorf("runtime API: unexpected output after %d replies: %q", n, rest)
	}
	return out, nil
}

// replyIsError tells error replies from results. Setting commands answer
// nothing on success, except "set server addr", which says what changed.
func replyIsError(cmd, reply string) bool {
	if reply == "" {
		return false
	}
	for _, p := range []string{"Unknown command", "No such", "Can't", "Unknown map", "Permission denied", "Require ", "Missing ", "Unknown "} {
		if strings.HasPrefix(reply, p) {
			return true
		}
	}
	if strings.HasPrefix(cmd, "show ") || strings.HasPrefix(cmd, "get ") || strings.HasPrefix(cmd, "help") {
		return false
	}
	for _, p := range []string{"IP changed from", "no need to change", "port changed from"} {
		if strings.HasPrefix(reply, p) {
			return !strings.Contains(reply, " by '")
		}
	}
	return true
}

// ServerState is one line of "show servers state".
type ServerState struct {
	Backend, Server string
	Addr            string
	Port            int
	OpState         int // 0 stopped, 1 starting, 2 running, 3 stopping
	AdminState      int // bits: 0x01 forced maint, 0x02 inherited maint, 0x04 config maint, 0x08 forced drain, 0x20 resolution maint
	UserWeight      int
}

// Maint reports whether the server is in maintenance (not counting the
// config "disabled" marker, which the runtime "state ready" leaves set).
func (s ServerState) Maint() bool { return s.AdminState&0x23 != 0 }

// Drain reports whether the server is draining (forced drain or weight 0).
func (s ServerState) Drain() bool { return s.AdminState&0x08 != 0 || s.UserWeight == 0 }

// ShowServersState returns every server of every backend.
func (c *Runtime) ShowServersState(ctx context.Context) ([]ServerState, error) {
	r, err := c.Exec(ctx, []string{"show servers state"})
	if err != nil {
		return nil, err
	}
	return parseServersState(r[0])
}

func parseServersState(text string) ([]ServerState, error) {
	var out []ServerState
	var cols map[string]int
	for i, line := range strings.Split(text, "\n") {
		if i == 0 || line == "" {
			continue // version line
		}
		f := strings.Fields(line)
		if strings.HasPrefix(line, "#") {
			cols = map[string]int{}
			for j, name := range f[1:] {
				cols[name] = j
			}
			continue
		}
		if cols == nil {
			return nil, fmt.Errorf("show servers state: no header: %q", text)
		}
		get := func(name string) string {
			if j, ok := cols[name]; ok && j < len(f) {
				return f[j]
			}
			return ""
		}
		num := func(name string) int { n, _ := strconv.Atoi(get(name)); return n }
		out = append(out, ServerState{
			Backend: get("be_name"), Server: get("srv_name"), Addr: get("srv_addr"), Port: num("srv_port"),
			OpState: num("srv_op_state"), AdminState: num("srv_admin_state"), UserWeight: num("srv_uweight"),
		})
	}
	return out, nil
}

package main

// Shared pieces of the user commands (app, task, agents): flags, the API
// client, error printing, tables and the deployment progress line.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/atollhq/atoll/client"
	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/tlsfiles"
)

// Exit codes of the user commands.
const (
	cliExitOK    = 0
	cliExitError = 1 // API, network or input error; deployment timeout
	cliExitUsage = 2 // bad command line
)

const cliDefaultMaster = "http://127.0.0.1:8080"

// Seams for tests.
var (
	cliStdin     io.Reader = os.Stdin
	pollInterval           = 250 * time.Millisecond
	cliNow                 = time.Now
	isTerminal             = func(w io.Writer) bool {
		f, ok := w.(*os.File)
		if !ok {
			return false
		}
		fi, err := f.Stat()
		return err == nil && fi.Mode()&os.ModeCharDevice != 0
	}
)

// cliFlags are the flags every user command takes.
type cliFlags struct {
	master string
	caCert string
}

// newFlagSet returns a FlagSet that reports to stderr and carries --master.
func newFlagSet(name, usage string, stderr io.Writer) (*flag.FlagSet, *cliFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := &cliFlags{}
	// The default is resolved at use, so that -h never prints credentials
	// that ATOLL_MASTER may carry.
	fs.StringVar(&cf.master, "master", "", "master API `URL`, http:// or https://; user:pass@ in it is sent as basic auth, else $"+envHTTPCredentials+" (default $ATOLL_MASTER, else "+cliDefaultMaster+")")
	fs.StringVar(&cf.caCert, "ca-cert", "", "PEM CA `file` that verifies an https:// master (default $ATOLL_CA_CERT, else the system's roots)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\nflags:\n", usage)
		fs.PrintDefaults()
	}
	return fs, cf
}

// parseArgs parses flags anywhere on the command line (Go's flag package
// stops at the first positional argument) and returns the positional ones.
// Everything after "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseCommand parses args and checks the number of positional arguments.
// It returns the exit code to use when ok is false (0 after -h).
func parseCommand(fs *flag.FlagSet, args []string, min, max int) (pos []string, code int, ok bool) {
	pos, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, cliExitOK, false
	}
	if err != nil {
		return nil, cliExitUsage, false // flag already printed the error and usage
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		switch {
		case len(pos) < min:
			fmt.Fprintf(fs.Output(), "%s: missing argument\n", fs.Name())
		default:
			fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), pos[max])
		}
		fs.Usage()
		return nil, cliExitUsage, false
	}
	return pos, cliExitOK, true
}

// masterURL is --master, else $ATOLL_MASTER, else the default.
func (cf *cliFlags) masterURL() string {
	if cf.master != "" {
		return cf.master
	}
	if env := os.Getenv("ATOLL_MASTER"); env != "" {
		return env
	}
	return cliDefaultMaster
}

// newClient is a client of the master with the CA and credentials the
// flags and environment give.
func newClient(cf *cliFlags) *client.Client {
	raw := cf.masterURL()
	c := client.New(raw, cf.httpClient(30*time.Second))
	if _, user, pass, err := splitMasterURL(raw); err == nil && user == "" && pass == "" {
		if user, pass, ok := envCredentials(); ok {
			c.UseCredentials(user, pass)
		}
	}
	return c
}

// envCredentials is $ATOLL_HTTP_CREDENTIALS split at its first colon;
// without it, the credentials of an `atoll dev` run from this folder with
// its default data dir (.atoll/auth/api-credentials), so that the CLI works
// with `make run` with nothing to type.
func envCredentials() (user, pass string, ok bool) {
	if env := os.Getenv(envHTTPCredentials); env != "" {
		return strings.Cut(env, ":")
	}
	creds, _, err := readCredentialsFile(filepath.Join(defaultDevDataDir, devAPICredentialsFile))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(creds, ":")
}

// httpClient is an HTTP client that verifies https:// masters with
// --ca-cert (or $ATOLL_CA_CERT); timeout 0 means none. A CA file that
// cannot be read fails every request with the reason.
func (cf *cliFlags) httpClient(timeout time.Duration) *http.Client {
	hc := &http.Client{Timeout: timeout, CheckRedirect: client.FollowLeader}
	file, flag := cf.caCert, "--ca-cert"
	if file == "" {
		file, flag = os.Getenv("ATOLL_CA_CERT"), "$ATOLL_CA_CERT"
	}
	if file == "" {
		return hc
	}
	cfg, err := tlsfiles.Client(file)
	if err != nil {
		hc.Transport = failingTransport{fmt.Errorf("%s: %w", flag, err)}
		return hc
	}
	hc.Transport = &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: cfg}
	return hc
}

// failingTransport fails every request with err.
type failingTransport struct{ err error }

func (t failingTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, t.err }

// fail prints err for command name and returns exitError. API errors print
// their message, then every 422 detail as "  <path>: <error>".
func cliFail(stderr io.Writer, name string, err error) int {
	var ae *client.APIError
	if !errors.As(err, &ae) {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		var unknownCA x509.UnknownAuthorityError
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			fmt.Fprintf(stderr, "  is a master running there? point --master or ATOLL_MASTER at one\n")
		case errors.As(err, &unknownCA):
			fmt.Fprintf(stderr, "  the master's certificate is not signed by a CA this machine trusts: give the cluster's CA with --ca-cert or ATOLL_CA_CERT\n")
		}
		return cliExitError
	}
	msg := ae.Message
	if msg == "" {
		msg = http.StatusText(ae.Status)
	}
	fmt.Fprintf(stderr, "%s: %s (HTTP %d)\n", name, msg, ae.Status)
	for _, d := range ae.Details {
		if len(d.Errors) == 0 {
			fmt.Fprintf(stderr, "  %s: invalid\n", d.Path)
		}
		for _, e := range d.Errors {
			fmt.Fprintf(stderr, "  %s: %s\n", d.Path, e)
		}
	}
	switch ae.Status {
	case http.StatusConflict:
		ids := make([]string, 0, len(ae.Deployments))
		for _, d := range ae.Deployments {
			ids = append(ids, d.ID)
		}
		if len(ids) > 0 {
			fmt.Fprintf(stderr, "  locked by deployment %s; add --force to override it\n", strings.Join(ids, ", "))
		} else {
			fmt.Fprintf(stderr, "  add --force to override the running deployment\n")
		}
	case http.StatusUnauthorized:
		fmt.Fprintf(stderr, "  give credentials in $%s=user:pass or in the master URL: --master http://user:pass@host:8080\n", envHTTPCredentials)
	}
	return cliExitError
}

// writeJSON prints v (raw JSON or any value) indented, with a newline.
func printJSON(w io.Writer, v any) error {
	var data []byte
	var err error
	if raw, ok := v.(json.RawMessage); ok {
		data, err = indentRaw(raw)
	} else {
		data, err = json.MarshalIndent(v, "", "  ")
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

func indentRaw(raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 {
		return []byte("null"), nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// rawArray joins raw JSON objects into one JSON array.
func rawArray(items []json.RawMessage) json.RawMessage {
	if len(items) == 0 {
		return json.RawMessage("[]")
	}
	out := []byte{'['}
	for i, it := range items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, it...)
	}
	return append(out, ']')
}

// newTable returns an aligned table writer; call Flush when done.
func newTabTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

// row writes one table row.
func tableRow(tw io.Writer, cells ...string) {
	for i, c := range cells {
		if c == "" {
			c = "-"
		}
		// Tabs and newlines inside a cell would break the table.
		c = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, c)
		if i > 0 {
			io.WriteString(tw, "\t")
		}
		io.WriteString(tw, c)
	}
	io.WriteString(tw, "\n")
}

// num formats a float the short way: 0.1, 128, 1.5.
func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func fmtInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// truncate shortens s to at most n runes, ending in "...".
func fmtTruncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 3 {
		return string(r[:n])
	}
	return string(r[:n-3]) + "..."
}

// age is a short duration since t: 45s, 12m, 3h4m, 5d.
func fmtAge(t time.Time) string {
	d := cliNow().Sub(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		h := int(d / time.Hour)
		if m := int((d % time.Hour) / time.Minute); m > 0 {
			return fmt.Sprintf("%dh%dm", h, m)
		}
		return fmt.Sprintf("%dh", h)
	default:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
}

// kv formats a map as sorted key=value pairs.
func fmtKV(m map[string]string, sep string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, sep)
}

// progress prints a status line that changes over time: rewritten in place
// with \r on a terminal, one line per change otherwise.
type progressLine struct {
	w     io.Writer
	tty   bool
	last  string
	width int // runes of the line on screen (tty)
}

func newProgressLine(w io.Writer) *progressLine { return &progressLine{w: w, tty: isTerminal(w)} }

// update shows line if it differs from the last one.
func (p *progressLine) update(line string) {
	if line == p.last {
		return
	}
	p.last = line
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	n := len([]rune(line))
	pad := ""
	if p.width > n {
		pad = strings.Repeat(" ", p.width-n)
	}
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.width = n
}

// done ends the progress output with a final line.
func (p *progressLine) done(line string) {
	if p.tty {
		p.update(line)
		p.last = ""
		p.width = 0
		fmt.Fprintln(p.w)
		return
	}
	if line != p.last {
		fmt.Fprintln(p.w, line)
	}
	p.last = ""
}

// abandon ends a progress line on a terminal so that what follows starts on
// a fresh line.
func (p *progressLine) abandon() {
	if p.tty && p.width > 0 {
		fmt.Fprintln(p.w)
		p.width = 0
	}
	p.last = ""
}

// waitOp describes the deployment a command waits for.
type waitOp struct {
	appID        string
	deploymentID string // "" waits for every deployment of the app
	verb         string // "deploying", "scaling", "restarting", "deleting"
	pastVerb     string // "deployed", ...
	deleting     bool   // done when the app is gone
}

// transientErr reports errors worth retrying while waiting: network errors
// and 5xx (a master failing over, a standby proxying to a new leader).
func transientErr(err error) bool {
	s := client.StatusOf(err)
	return s == 0 || s >= 500
}

// waitDeployment polls /v2/deployments and /v2/apps/{id} every pollInterval
// until the deployment is gone and the app has converged (running ==
// instances; for deletes, the app is gone), showing progress on stdout.
func waitDeployment(ctx context.Context, c *client.Client, op waitOp, timeout time.Duration, stdout io.Writer) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	p := newProgressLine(stdout)
	var lastErr error
	status := ""
	for {
		line, done, err := pollOnce(ctx, c, op)
		switch {
		case err == nil:
			lastErr = nil
			status = line
			if done {
				p.done(line)
				return nil
			}
			p.update(line)
		case ctx.Err() != nil:
			// the poll was cut short by the deadline: report below
		case errors.As(err, new(*deploymentFailedError)):
			p.abandon()
			return err
		case transientErr(err):
			lastErr = err
			base := status
			if base == "" {
				base = op.verb + " " + op.appID + ": waiting for the master"
			}
			p.update(base + " (retrying: " + fmtTruncate(err.Error(), 80) + ")")
		default:
			p.abandon()
			return err
		}
		select {
		case <-ctx.Done():
			p.abandon()
			what := "deployment"
			if op.deploymentID != "" {
				what += " " + op.deploymentID
			}
			what += " of " + op.appID
			if status != "" {
				what += "; last seen: " + strings.TrimPrefix(status, op.verb+" "+op.appID+": ")
			}
			if lastErr != nil {
				what += "; last error: " + lastErr.Error()
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("timed out after %s waiting for %s; it goes on in the master (see `atoll app show %s`)", timeout, what, op.appID)
			}
			return fmt.Errorf("stopped waiting for %s; it goes on in the master", what)
		case <-time.After(pollInterval):
		}
	}
}

// pollOnce reads the deployments and the app once and says where the
// deployment stands.
func pollOnce(ctx context.Context, c *client.Client, op waitOp) (line string, done bool, err error) {
	deps, err := c.Deployments(ctx)
	if err != nil {
		return "", false, err
	}
	active := false
	waiting, step := "", ""
	for _, d := range deps {
		mine := false
		if op.deploymentID != "" {
			mine = d.ID == op.deploymentID
		} else {
			for _, a := range d.AffectedApps {
				if client.NormalizeAppID(a) == op.appID {
					mine = true
				}
			}
		}
		if !mine {
			continue
		}
		active = true
		if d.TotalSteps > 1 {
			step = fmt.Sprintf("step %d/%d", d.CurrentStep, d.TotalSteps)
		}
		for _, a := range d.CurrentActions {
			if a.Waiting != "" && (a.App == "" || client.NormalizeAppID(a.App) == op.appID) {
				waiting = a.Waiting
			}
		}
		if d.Failed != "" {
			// The master halted the deployment: it will not finish.
			return "", false, &deploymentFailedError{fmt.Sprintf("deployment %s of %s failed: %s", d.ID, op.appID, d.Failed)}
		}
	}
	app, err := c.App(ctx, op.appID)
	if op.deleting && client.IsNotFound(err) {
		if active {
			return fmt.Sprintf("%s %s: app removed, stopping its tasks", op.verb, op.appID), false, nil
		}
		return fmt.Sprintf("%s %s", op.pastVerb, op.appID), true, nil
	}
	if err != nil {
		if client.IsNotFound(err) {
			return "", false, fmt.Errorf("app %s disappeared while %s: %w", op.appID, op.verb, err)
		}
		return "", false, err
	}
	running := app.Running()
	var b strings.Builder
	if op.deleting {
		fmt.Fprintf(&b, "%s %s: %d running", op.verb, op.appID, running)
	} else {
		fmt.Fprintf(&b, "%s %s: %d/%d running", op.verb, op.appID, running, app.Instances)
		if old, fresh := rollout(app); old > 0 {
			fmt.Fprintf(&b, " (%d new, %d old)", fresh, old)
		}
		if len(app.HealthChecks) > 0 {
			fmt.Fprintf(&b, ", %d healthy", app.TasksHealthy)
		}
		if step != "" {
			fmt.Fprintf(&b, ", %s", step)
		}
	}
	if app.TasksStaged > 0 {
		fmt.Fprintf(&b, ", %d staged", app.TasksStaged)
	}
	if waiting != "" {
		fmt.Fprintf(&b, " (waiting: %s)", waiting)
	}
	if !active && !op.deleting && running == app.Instances {
		b.Reset()
		fmt.Fprintf(&b, "%s %s: %d/%d running", op.pastVerb, op.appID, running, app.Instances)
		if len(app.HealthChecks) > 0 {
			fmt.Fprintf(&b, ", %d healthy", app.TasksHealthy)
		}
		return b.String(), true, nil
	}
	return b.String(), false, nil
}

// rollout counts the app's live tasks of its current config (new) and of
// an earlier one (old), which a rolling deployment is replacing.
func rollout(app client.App) (old, fresh int) {
	for _, t := range app.Tasks {
		switch t.State {
		case events.TaskStaging, events.TaskStarting, events.TaskRunning:
			if t.Version.Before(app.VersionInfo.LastConfigChangeAt) {
				old++
			} else {
				fresh++
			}
		}
	}
	return old, fresh
}

// deploymentFailedError is a deployment the master gave up on: waiting
// longer cannot help.
type deploymentFailedError struct{ msg string }

func (e *deploymentFailedError) Error() string { return e.msg }

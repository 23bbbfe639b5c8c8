package main

// atoll events: tail the master's /v2/events (Marathon's SSE stream) as
// readable lines, or as JSON for scripts. The stream follower here is
// shared with atoll top.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/r3labs/sse/v2"
	"golang.org/x/term"
	"gopkg.in/cenkalti/backoff.v1"

	"github.com/atollhq/atoll/client"
)

// Seams for tests.
var (
	// termOut reports whether w is a terminal.
	termOut = func(w io.Writer) bool {
		f, ok := w.(*os.File)
		return ok && term.IsTerminal(int(f.Fd()))
	}
	// colorOut reports whether w gets ANSI colours: a terminal, and
	// NO_COLOR (no-color.org) unset.
	colorOut = func(w io.Writer) bool { return termOut(w) && os.Getenv("NO_COLOR") == "" }
	// streamRetryMax bounds the wait between reconnects.
	streamRetryMax = 10 * time.Second
)

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("atoll events", "atoll events [--type T[,T...]] [--app ID] [--json] [--master URL]", stderr)
	var types []string
	fs.Func("type", "show only events of type `T` (repeatable or comma-separated), e.g. status_update_event", func(s string) error {
		for _, t := range strings.Split(s, ",") {
			if t = strings.TrimSpace(t); t != "" {
				types = append(types, t)
			}
		}
		return nil
	})
	appID := fs.String("app", "", "show only events about app `ID` (and its deployments)")
	asJSON := fs.Bool("json", false, "print each event's JSON on one line, for scripts")
	if _, code, ok := parseCommand(fs, args, 0, 0); !ok {
		return code
	}
	want := ""
	if *appID != "" {
		want = client.NormalizeAppID(*appID)
	}
	p := eventPrinter{w: stdout, json: *asJSON, color: !*asJSON && colorOut(stdout)}
	f := &streamFollower{flags: cf, types: types, stderr: stderr, name: fs.Name()}
	err := f.run(ctx, nil, func(ev streamEvent) {
		if want != "" && !eventAbout(ev.data, want) {
			return
		}
		p.print(ev)
	})
	if err != nil {
		return cliFail(stderr, fs.Name(), err)
	}
	return cliExitOK
}

// streamEvent is one event of /v2/events.
type streamEvent struct {
	id, typ string
	data    []byte
}

// streamFollower follows /v2/events, reconnecting with Last-Event-ID so
// that the master replays what was missed (or sends "resync").
type streamFollower struct {
	flags  *cliFlags
	types  []string // server-side event_type filter; none: all
	stderr io.Writer
	name   string // for messages
}

// run calls onConnect after each (re)connection and onEvent for every
// event, both on one goroutine, until ctx ends (nil) or the first
// connection fails (its error). Later failures are retried for ever.
func (f *streamFollower) run(ctx context.Context, onConnect func(), onEvent func(streamEvent)) error {
	base, user, pass, err := splitMasterURL(f.flags.masterURL())
	if err != nil {
		return err
	}
	u := base + "/v2/events"
	if len(f.types) > 0 {
		u += "?" + url.Values{"event_type": f.types}.Encode()
	}
	// The stream has no overall timeout; the master's heartbeats every 15s
	// keep it alive.
	c := sse.NewClient(u, sse.ClientMaxBufferSize(4<<20))
	c.Connection = f.flags.httpClient(0)
	// One attempt per Subscribe: the loop below retries, so that ctx
	// ends the wait and the next attempt keeps c.LastEventID.
	c.ReconnectStrategy = &backoff.StopBackOff{}
	if user == "" && pass == "" {
		user, pass, _ = envCredentials()
	}
	if user != "" || pass != "" {
		req, _ := http.NewRequest(http.MethodGet, base, nil)
		req.SetBasicAuth(user, pass)
		c.Headers = map[string]string{"Authorization": req.Header.Get("Authorization")}
	}
	connected := false
	c.ResponseValidator = func(_ *sse.Client, resp *http.Response) error {
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("GET %s: %s", redact(u), resp.Status)
		}
		connected = true
		if onConnect != nil {
			onConnect()
		}
		return nil
	}
	wait := 500 * time.Millisecond
	for {
		wasConnected := connected
		err := c.SubscribeRawWithContext(ctx, func(ev *sse.Event) {
			wait = 500 * time.Millisecond
			if len(ev.Data) == 0 {
				// A comment (the master's ": ping"): r3labs hands it on
				// with the last id filled in. Per the SSE spec an event
				// without data is not dispatched.
				return
			}
			typ := string(ev.Event)
			if typ == "" {
				typ = "message" // the SSE default
			}
			onEvent(streamEvent{id: string(ev.ID), typ: typ, data: ev.Data})
		})
		if ctx.Err() != nil {
			return nil
		}
		if !connected && !wasConnected {
			if err == nil {
				err = errors.New("stream closed")
			}
			return err
		}
		why := "stream ended"
		if err != nil {
			why = err.Error()
		}
		last, _ := c.LastEventID.Load().([]byte)
		fmt.Fprintf(f.stderr, "%s: %s; reconnecting in %s (from event %s)\n", f.name, why, wait, orDash(string(last)))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(wait*2, streamRetryMax)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// splitMasterURL is the master URL without credentials, and the
// credentials, for a client that sets its own headers.
func splitMasterURL(raw string) (base, user, pass string, err error) {
	base = client.New(raw, nil).BaseURL()
	if base == "" {
		_, err = client.New(raw, nil).Leader(context.Background())
		return "", "", "", err // the client's own message for a bad URL
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	if u, perr := url.Parse(raw); perr == nil && u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	return base, user, pass, nil
}

// eventApps lists the app ids a Marathon event is about: appId, an app
// definition's id, the apps of a deployment plan.
func eventApps(data []byte) []string {
	var ev struct {
		AppID         string `json:"appId"`
		AppDefinition *struct {
			ID string `json:"id"`
		} `json:"appDefinition"`
		Plan *struct {
			Steps []struct {
				Actions []struct {
					App string `json:"app"`
				} `json:"actions"`
			} `json:"steps"`
		} `json:"plan"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return nil
	}
	var ids []string
	add := func(id string) {
		if id == "" {
			return
		}
		id = client.NormalizeAppID(id)
		for _, x := range ids {
			if x == id {
				return
			}
		}
		ids = append(ids, id)
	}
	add(ev.AppID)
	if ev.AppDefinition != nil {
		add(ev.AppDefinition.ID)
	}
	if ev.Plan != nil {
		for _, s := range ev.Plan.Steps {
			for _, a := range s.Actions {
				add(a.App)
			}
		}
	}
	return ids
}

func eventAbout(data []byte, appID string) bool {
	for _, id := range eventApps(data) {
		if id == appID {
			return true
		}
	}
	return false
}

// ANSI SGR colours.
const (
	ansiReset   = "\x1b[0m"
	ansiDim     = "\x1b[2m"
	ansiRed     = "\x1b[31m"
	ansiGreen   = "\x1b[32m"
	ansiYellow  = "\x1b[33m"
	ansiMagenta = "\x1b[35m"
	ansiCyan    = "\x1b[36m"
	ansiBold    = "\x1b[1m"
)

type eventPrinter struct {
	w     io.Writer
	json  bool
	color bool
}

func (p eventPrinter) print(ev streamEvent) {
	if p.json {
		fmt.Fprintf(p.w, "%s\n", strings.TrimSpace(string(ev.data)))
		return
	}
	line, color := formatEvent(ev)
	if p.color && color != "" {
		line = color + line + ansiReset
	}
	fmt.Fprintln(p.w, line)
}

// marathonEvent holds the fields of Marathon's events that the readable
// line shows.
type marathonEvent struct {
	Timestamp  string `json:"timestamp"`
	AppID      string `json:"appId"`
	TaskID     string `json:"taskId"`
	TaskStatus string `json:"taskStatus"`
	Message    string `json:"message"`
	Host       string `json:"host"`
	SlaveID    string `json:"slaveId"`
	Ports      []int  `json:"ports"`
	Alive      *bool  `json:"alive"`
	URI        string `json:"uri"`
	ID         string `json:"id"`
	RemoteAddr string `json:"remoteAddress"`
	Reason     string `json:"reason"`
	Appdef     *struct {
		Instances int `json:"instances"`
	} `json:"appDefinition"`
	Plan *struct {
		ID string `json:"id"`
	} `json:"plan"`
	CurrentStep *struct {
		Actions []struct {
			Action string `json:"action"`
			App    string `json:"app"`
		} `json:"actions"`
	} `json:"currentStep"`
}

// formatEvent is the readable line of an event and the colour it gets on
// a terminal: "15:04:05.000 status_update_event /demo/echo  <what>".
func formatEvent(ev streamEvent) (line, color string) {
	var e marathonEvent
	_ = json.Unmarshal(ev.data, &e)
	ts := e.Timestamp
	if t, err := time.Parse(time.RFC3339Nano, e.Timestamp); err == nil {
		ts = t.Local().Format("15:04:05.000")
	}
	apps := strings.Join(eventApps(ev.data), ",")
	what := ""
	switch ev.typ {
	case "status_update_event":
		what = fmt.Sprintf("%s %s on %s", e.TaskID, e.TaskStatus, e.Host)
		if len(e.Ports) > 0 {
			what += ":" + fmtInts(e.Ports)
		}
		if e.Message != "" {
			what += " (" + e.Message + ")"
		}
		switch e.TaskStatus {
		case "TASK_RUNNING":
			color = ansiGreen
		case "TASK_STAGING", "TASK_STARTING", "TASK_KILLING":
			color = ansiYellow
		case "TASK_KILLED", "TASK_FINISHED":
			color = ansiMagenta
		default:
			color = ansiRed
		}
	case "health_status_changed_event":
		alive := e.Alive != nil && *e.Alive
		what, color = e.TaskID+" unhealthy", ansiRed
		if alive {
			what, color = e.TaskID+" healthy", ansiGreen
		}
	case "api_post_event":
		what, color = e.URI, ansiCyan
		if e.Appdef != nil {
			what += fmt.Sprintf(" instances=%d", e.Appdef.Instances)
		}
	case "app_terminated_event":
		what, color = "app removed", ansiMagenta
	case "deployment_info", "deployment_step_success", "deployment_success", "deployment_failed", "deployment_step_failure":
		id := e.ID
		if id == "" && e.Plan != nil {
			id = e.Plan.ID
		}
		what = "deployment " + id
		if e.CurrentStep != nil && ev.typ != "deployment_success" {
			var acts []string
			for _, a := range e.CurrentStep.Actions {
				acts = append(acts, a.Action+" "+a.App)
			}
			if len(acts) > 0 {
				what += ": " + strings.Join(acts, ", ")
			}
		}
		switch ev.typ {
		case "deployment_success":
			color = ansiGreen
		case "deployment_failed", "deployment_step_failure":
			color = ansiRed
		default:
			color = ansiYellow
		}
	case "event_stream_attached", "event_stream_detached":
		what, color = e.RemoteAddr, ansiDim
	case "resync":
		what, color = e.Reason, ansiBold+ansiRed
	case "lb_report_event":
		what, color = fmtTruncate(string(ev.data), 160), ansiRed
	default:
		what = fmtTruncate(string(ev.data), 160)
	}
	line = fmt.Sprintf("%-12s %-27s %-20s %s", orDash(ts), ev.typ, orDash(apps), what)
	return strings.TrimRight(line, " "), color
}

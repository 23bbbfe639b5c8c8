package main

// atoll top: a live table of apps and agents, redrawn when the master's
// event stream says something changed (no polling).

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/atollhq/atoll/client"
)

// topDebounce gathers a burst of events into one redraw.
var topDebounce = 200 * time.Millisecond

// ANSI: cursor home, then clear the screen.
const ansiClear = "\x1b[H\x1b[2J"

func runTop(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("atoll top", "atoll top [--once] [--master URL]", stderr)
	once := fs.Bool("once", false, "print one snapshot and exit")
	if _, code, ok := parseCommand(fs, args, 0, 0); !ok {
		return code
	}
	c := newClient(cf)
	if *once {
		snap, err := takeTopSnapshot(ctx, c)
		if err != nil {
			return cliFail(stderr, fs.Name(), err)
		}
		writeTop(stdout, snap)
		return cliExitOK
	}

	tty := termOut(stdout)
	redraw := make(chan struct{}, 1)
	poke := func() {
		select {
		case redraw <- struct{}{}:
		default:
		}
	}
	f := &streamFollower{flags: cf, stderr: stderr, name: fs.Name()}
	streamErr := make(chan error, 1)
	go func() {
		// Every (re)connection redraws: events may have been missed.
		streamErr <- f.run(ctx, poke, func(ev streamEvent) {
			if ev.typ != "event_stream_attached" && ev.typ != "event_stream_detached" {
				poke()
			}
		})
	}()
	for {
		select {
		case <-ctx.Done():
			return cliExitOK
		case err := <-streamErr:
			if err != nil {
				return cliFail(stderr, fs.Name(), err)
			}
			return cliExitOK
		case <-redraw:
		}
		// Let the rest of a burst arrive, then draw once.
		select {
		case <-ctx.Done():
			return cliExitOK
		case <-time.After(topDebounce):
		}
		select {
		case <-redraw:
		default:
		}
		snap, err := takeTopSnapshot(ctx, c)
		if ctx.Err() != nil {
			return cliExitOK
		}
		if tty {
			fmt.Fprint(stdout, ansiClear)
		} else {
			fmt.Fprintln(stdout)
		}
		if err != nil {
			// Keep following: the next event or reconnection redraws.
			fmt.Fprintf(stdout, "atoll top: %v\n", err)
			continue
		}
		writeTop(stdout, snap)
	}
}

type topSnapshot struct {
	at          time.Time
	master      string
	leader      string
	apps        []client.App
	deployments []client.Deployment
	agents      []client.Slave
}

func takeTopSnapshot(ctx context.Context, c *client.Client) (topSnapshot, error) {
	s := topSnapshot{at: cliNow(), master: c.BaseURL()}
	var err error
	if s.apps, err = c.Apps(ctx); err != nil {
		return s, err
	}
	if s.deployments, err = c.Deployments(ctx); err != nil {
		return s, err
	}
	st, err := c.State(ctx)
	if err != nil {
		return s, err
	}
	s.agents, s.leader = st.Slaves, st.LeaderHostPort()
	sort.Slice(s.apps, func(i, j int) bool { return s.apps[i].ID < s.apps[j].ID })
	sort.Slice(s.agents, func(i, j int) bool { return s.agents[i].Hostname < s.agents[j].Hostname })
	return s, nil
}

func writeTop(w io.Writer, s topSnapshot) {
	fmt.Fprintf(w, "atoll top  %s  leader %s  %s\n\n", s.master, orDash(s.leader), s.at.Local().Format("15:04:05"))

	deps := map[string]client.Deployment{}
	for _, d := range s.deployments {
		deps[d.ID] = d
	}
	tasksOn := map[string]int{}
	tw := newTabTable(w)
	tableRow(tw, "APP", "RUNNING", "HEALTHY", "WANTED", "DEPLOYMENTS")
	for i := range s.apps {
		a := &s.apps[i]
		for _, t := range a.Tasks {
			if t.State.Active() {
				tasksOn[t.AgentID]++
			}
		}
		healthy := "-"
		if len(a.HealthChecks) > 0 {
			healthy = fmt.Sprint(a.TasksHealthy)
		}
		tableRow(tw, a.ID, fmt.Sprint(a.Running()), healthy, fmt.Sprint(a.Instances), topDeployments(a, deps))
	}
	if len(s.apps) == 0 {
		tableRow(tw, "(no apps)")
	}
	tw.Flush()
	fmt.Fprintln(w)

	tw = newTabTable(w)
	tableRow(tw, "AGENT", "IP", "REGION", "CPUS", "MEM", "TASKS", "STATE")
	for i := range s.agents {
		a := &s.agents[i]
		state := "inactive"
		if a.Active {
			state = "active"
		}
		region := ""
		if r, ok := a.Attributes["region"]; ok {
			region = fmt.Sprint(r)
		}
		tableRow(tw, a.Hostname, a.IP(), region,
			fmtNum(a.UsedResources.Cpus)+"/"+fmtNum(a.Resources.Cpus),
			fmtNum(a.UsedResources.Mem)+"/"+fmtNum(a.Resources.Mem),
			fmt.Sprint(tasksOn[a.ID]), state)
	}
	if len(s.agents) == 0 {
		tableRow(tw, "(no agents)")
	}
	tw.Flush()
}

// topDeployments describes an app's deployments in progress: "-", or
// their count with the step and what the master waits for.
func topDeployments(a *client.App, deps map[string]client.Deployment) string {
	if len(a.Deployments) == 0 {
		return "-"
	}
	var parts []string
	for _, ref := range a.Deployments {
		d, ok := deps[ref.ID]
		if !ok {
			parts = append(parts, "starting")
			continue
		}
		p := fmt.Sprintf("step %d/%d", d.CurrentStep, d.TotalSteps)
		if d.Failed != "" {
			p = "FAILED: " + d.Failed
		}
		for _, act := range d.CurrentActions {
			if act.Waiting != "" && (act.App == "" || client.NormalizeAppID(act.App) == a.ID) {
				p += " (" + act.Waiting + ")"
			}
		}
		parts = append(parts, p)
	}
	return fmtTruncate(strings.Join(parts, "; "), 60)
}

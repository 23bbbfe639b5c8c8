package main

// atoll task list: the tasks of every app, or of one; atoll task logs
// (cli_task_logs.go).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/atollhq/atoll/client"
)

const taskUsage = `usage: atoll task <command> [flags]

commands:
  list [--app ID] [--json]   list tasks, of every app or of one
  logs <task-id> [--stderr] [-f]
                             print a task's stdout (or stderr) from its sandbox; -f follows it

every command takes --master URL (env ATOLL_MASTER, default http://127.0.0.1:8080).
`

// runTask runs "atoll task ..."; args are what follows "task".
func runTask(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, taskUsage)
		return cliExitUsage
	}
	switch args[0] {
	case "list", "ls":
		return taskList(ctx, args[1:], stdout, stderr)
	case "logs", "log":
		return taskLogs(ctx, args[1:], stdout, stderr) // cli_task_logs.go
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, taskUsage)
		return cliExitOK
	default:
		fmt.Fprintf(stderr, "atoll task: unknown command %q\n\n%s", args[0], taskUsage)
		return cliExitUsage
	}
}

func taskList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("atoll task list", "atoll task list [--app ID] [--json] [--master URL]", stderr)
	appID := fs.String("app", "", "only the tasks of app `ID`")
	asJSON := fs.Bool("json", false, "print the tasks as JSON, as the API returns them")
	if _, code, ok := parseCommand(fs, args, 0, 0); !ok {
		return code
	}
	c := newClient(cf)
	var tasks []client.Task
	var err error
	if *appID != "" {
		tasks, err = c.AppTasks(ctx, client.NormalizeAppID(*appID))
	} else {
		tasks, err = c.Tasks(ctx)
	}
	if err != nil {
		return cliFail(stderr, fs.Name(), err)
	}
	sortTasks(tasks)
	if *asJSON {
		raws := make([]json.RawMessage, len(tasks))
		for i := range tasks {
			raws[i] = tasks[i].Raw
		}
		if err := printJSON(stdout, rawArray(raws)); err != nil {
			return cliFail(stderr, fs.Name(), err)
		}
		return cliExitOK
	}
	writeTaskTable(stdout, tasks)
	return cliExitOK
}

// sortTasks orders tasks by app, host, then id.
func sortTasks(ts []client.Task) {
	sort.Slice(ts, func(i, j int) bool {
		a, b := &ts[i], &ts[j]
		if a.AppID != b.AppID {
			return a.AppID < b.AppID
		}
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return a.ID < b.ID
	})
}

func writeTaskTable(w io.Writer, tasks []client.Task) {
	tw := newTabTable(w)
	tableRow(tw, "ID", "APP", "HOST", "PORTS", "STATE", "HEALTHY", "STARTED")
	for i := range tasks {
		t := &tasks[i]
		started := ""
		if t.StartedAt != nil && !t.StartedAt.IsZero() {
			started = fmtAge(*t.StartedAt) + " ago"
		}
		tableRow(tw, t.ID, t.AppID, t.Host, fmtInts(t.Ports),
			strings.TrimPrefix(string(t.State), "TASK_"), taskHealth(t), started)
	}
	tw.Flush()
}

// taskHealth is yes/no from the task's healthy flag or its health check
// results; "" when the app has no health checks.
func taskHealth(t *client.Task) string {
	if t.Healthy != nil {
		return fmtYesNo(*t.Healthy)
	}
	if len(t.HealthCheckResults) == 0 {
		return ""
	}
	for _, r := range t.HealthCheckResults {
		if !r.Alive {
			return "no"
		}
	}
	return "yes"
}

func fmtYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

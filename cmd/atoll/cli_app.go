package main

// atoll app: list, show, deploy, scale, restart and delete Marathon apps
// through the master's /v2 API.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/atollhq/atoll/client"
)

const appUsage = `usage: atoll app <command> [flags] [args]

commands:
  list                   list apps (--json: the apps as JSON)
  show ID                show an app and its tasks (--json: the app as JSON)
  deploy -f FILE         create an app from a JSON definition, or update it if it
                         exists (FILE "-" reads standard input)
  scale ID N             run N instances of an app
  restart ID             replace every task of an app
  delete ID              destroy an app and kill its tasks

deploy, scale, restart and delete wait until the deployment has finished:
  --detach               return as soon as the master has accepted the change
  --timeout DURATION     how long to wait (default 5m)
  --force                override a deployment that holds the app

every command takes --master URL (env ATOLL_MASTER, default http://127.0.0.1:8080);
user:pass@ in the URL is sent as basic auth.
Run "atoll app <command> -h" for the flags of one command.
`

// runApp runs "atoll app ..."; args are what follows "app".
func runApp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, appUsage)
		return cliExitUsage
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "list", "ls":
		return appList(ctx, rest, stdout, stderr)
	case "show", "get":
		return appShow(ctx, rest, stdout, stderr)
	case "deploy":
		return appDeploy(ctx, rest, stdout, stderr)
	case "scale":
		return appScale(ctx, rest, stdout, stderr)
	case "restart":
		return appRestart(ctx, rest, stdout, stderr)
	case "delete", "destroy", "rm":
		return appDelete(ctx, rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, appUsage)
		return cliExitOK
	default:
		fmt.Fprintf(stderr, "atoll app: unknown command %q\n\n%s", sub, appUsage)
		return cliExitUsage
	}
}

func appList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("atoll app list", "atoll app list [--json] [--master URL]", stderr)
	asJSON := fs.Bool("json", false, "print the apps as JSON, as the API returns them")
	if _, code, ok := parseCommand(fs, args, 0, 0); !ok {
		return code
	}
	apps, err := newClient(cf).Apps(ctx)
	if err != nil {
		return cliFail(stderr, fs.Name(), err)
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].ID < apps[j].ID })
	if *asJSON {
		raws := make([]json.RawMessage, len(apps))
		for i := range apps {
			raws[i] = apps[i].Raw
		}
		if err := printJSON(stdout, rawArray(raws)); err != nil {
			return cliFail(stderr, fs.Name(), err)
		}
		return cliExitOK
	}
	writeAppTable(stdout, apps)
	return cliExitOK
}

func writeAppTable(w io.Writer, apps []client.App) {
	tw := newTabTable(w)
	tableRow(tw, "ID", "INSTANCES", "HEALTHY", "CPUS", "MEM", "PORTS", "CMD", "DEPLOYING")
	for i := range apps {
		a := &apps[i]
		healthy := ""
		if len(a.HealthChecks) > 0 {
			healthy = strconv.Itoa(a.TasksHealthy)
		}
		deploying := "no"
		if len(a.Deployments) > 0 {
			deploying = "yes"
		}
		tableRow(tw, a.ID,
			fmt.Sprintf("%d/%d", a.Running(), a.Instances),
			healthy, fmtNum(a.Cpus), fmtNum(a.Mem), fmtInts(a.ServicePorts()),
			fmtTruncate(appCommand(a), 40), deploying)
	}
	tw.Flush()
}

// appCommand is the app's cmd, or its args joined.
func appCommand(a *client.App) string {
	if a.Cmd != "" {
		return a.Cmd
	}
	return strings.Join(a.Args, " ")
}

func appShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("atoll app show", "atoll app show ID [--json] [--master URL]", stderr)
	asJSON := fs.Bool("json", false, "print the app as JSON, as the API returns it")
	pos, code, ok := parseCommand(fs, args, 1, 1)
	if !ok {
		return code
	}
	app, err := newClient(cf).App(ctx, pos[0])
	if err != nil {
		return cliFail(stderr, fs.Name(), err)
	}
	if *asJSON {
		if err := printJSON(stdout, app.Raw); err != nil {
			return cliFail(stderr, fs.Name(), err)
		}
		return cliExitOK
	}
	writeAppDetails(stdout, &app)
	return cliExitOK
}

func writeAppDetails(w io.Writer, a *client.App) {
	tw := newTabTable(w)
	field := func(k, v string) {
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s:\t%s\n", k, strings.ReplaceAll(v, "\n", " "))
	}
	field("ID", a.ID)
	field("CMD", a.Cmd)
	if len(a.Args) > 0 {
		field("ARGS", strconv.Quote(strings.Join(a.Args, " ")))
	}
	counts := fmt.Sprintf("%d/%d running, %d staged", a.Running(), a.Instances, a.TasksStaged)
	if len(a.HealthChecks) > 0 {
		counts += fmt.Sprintf(", %d healthy, %d unhealthy", a.TasksHealthy, a.TasksUnhealthy)
	}
	field("INSTANCES", counts)
	field("CPUS", fmtNum(a.Cpus))
	field("MEM", fmtNum(a.Mem)+" MB")
	field("DISK", fmtNum(a.Disk)+" MB")
	if c := a.Container; c != nil && c.Docker != nil {
		field("IMAGE", c.Docker.Image)
	}
	if a.Bridged() {
		field("NETWORK", "container/bridge")
	}
	var ports []string
	for _, pd := range a.PortSpecs() { // a bridged app's: its port mappings' service ports
		p := strconv.Itoa(pd.Port)
		var extra []string
		if pd.Protocol != "" {
			extra = append(extra, pd.Protocol)
		}
		if pd.Name != "" {
			extra = append(extra, pd.Name)
		}
		if len(extra) > 0 {
			p += " (" + strings.Join(extra, ", ") + ")"
		}
		ports = append(ports, p)
	}
	if a.RequirePorts && len(ports) > 0 {
		ports = append(ports, "[requirePorts]")
	}
	field("PORTS", strings.Join(ports, ", "))
	var cons []string
	for _, c := range a.Constraints {
		cons = append(cons, strings.Join(c, ":"))
	}
	field("CONSTRAINTS", strings.Join(cons, ", "))
	field("LABELS", fmtKV(a.Labels, ", "))
	field("ENV", fmtKV(a.Env, ", "))
	var hcs []string
	for _, hc := range a.HealthChecks {
		s := hc.Protocol
		if hc.Path != "" {
			s += " " + hc.Path
		}
		if hc.Command != nil {
			s += " " + strconv.Quote(hc.Command.Value)
		}
		switch {
		case hc.Port != nil:
			s += fmt.Sprintf(" port %d", *hc.Port)
		case hc.PortIndex != nil:
			s += fmt.Sprintf(" portIndex %d", *hc.PortIndex)
		}
		s += fmt.Sprintf(" every %ds, timeout %ds, grace %ds, max failures %d",
			hc.IntervalSeconds, hc.TimeoutSeconds, hc.GracePeriodSeconds, hc.MaxConsecutiveFailures)
		hcs = append(hcs, s)
	}
	field("HEALTH CHECKS", strings.Join(hcs, "; "))
	field("UPGRADE", fmt.Sprintf("minimumHealthCapacity %s, maximumOverCapacity %s",
		fmtNum(a.UpgradeStrategy.MinimumHealthCapacity), fmtNum(a.UpgradeStrategy.MaximumOverCapacity)))
	if !a.Version.IsZero() {
		field("VERSION", a.Version.UTC().Format(time.RFC3339Nano))
	}
	var deps []string
	for _, d := range a.Deployments {
		deps = append(deps, d.ID)
	}
	field("DEPLOYMENTS", strings.Join(deps, ", "))
	tw.Flush()
	fmt.Fprintf(w, "\nTASKS:\n")
	if len(a.Tasks) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	tasks := append([]client.Task(nil), a.Tasks...)
	sortTasks(tasks)
	writeTaskTable(w, tasks)
}

// deployFlags are the flags of the commands that start a deployment.
type deployFlags struct {
	detach  bool
	timeout time.Duration
	force   bool
}

func addDeployFlags(fs *flag.FlagSet) *deployFlags {
	df := &deployFlags{}
	fs.BoolVar(&df.detach, "detach", false, "return once the master has accepted the change, without waiting for the deployment")
	fs.DurationVar(&df.timeout, "timeout", 5*time.Minute, "how long to wait for the deployment to finish (0: no limit)")
	fs.BoolVar(&df.force, "force", false, "override a deployment that holds the app")
	return df
}

// finish waits for the deployment unless --detach, and returns the exit code.
func (df *deployFlags) finish(ctx context.Context, c *client.Client, op waitOp, name string, stdout, stderr io.Writer) int {
	if df.detach {
		return cliExitOK
	}
	if err := waitDeployment(ctx, c, op, df.timeout, stdout); err != nil {
		return cliFail(stderr, name, err)
	}
	return cliExitOK
}

func appDeploy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("atoll app deploy", "atoll app deploy -f FILE [--detach] [--timeout 5m] [--force] [--master URL]", stderr)
	file := fs.String("f", "", "app definition `FILE` (JSON, Marathon's format); \"-\" reads standard input")
	fs.StringVar(file, "file", "", "same as -f")
	df := addDeployFlags(fs)
	pos, code, ok := parseCommand(fs, args, 0, 1)
	if !ok {
		return code
	}
	if *file == "" && len(pos) == 1 {
		*file = pos[0] // "atoll app deploy app.json" is forgiven
	}
	if *file == "" {
		fmt.Fprintf(stderr, "%s: -f FILE is required\n", fs.Name())
		fs.Usage()
		return cliExitUsage
	}
	body, id, err := readAppDefinition(*file)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return cliExitError
	}
	c := newClient(cf)
	op := waitOp{appID: id, verb: "deploying", pastVerb: "deployed"}
	_, err = c.App(ctx, id)
	switch {
	case client.IsNotFound(err):
		app, _, err := c.CreateApp(ctx, body)
		if err != nil {
			return cliFail(stderr, fs.Name(), err)
		}
		if app.ID != "" {
			op.appID = client.NormalizeAppID(app.ID)
		}
		if len(app.Deployments) > 0 {
			op.deploymentID = app.Deployments[0].ID
		}
		fmt.Fprintf(stdout, "created app %s%s\n", op.appID, deploymentNote(op.deploymentID, ""))
	case err != nil:
		return cliFail(stderr, fs.Name(), err)
	default:
		depID, version, err := c.UpdateApp(ctx, id, body, df.force)
		if err != nil {
			return cliFail(stderr, fs.Name(), err)
		}
		op.deploymentID = depID
		fmt.Fprintf(stdout, "updated app %s%s\n", id, deploymentNote(depID, version))
	}
	return df.finish(ctx, c, op, fs.Name(), stdout, stderr)
}

func deploymentNote(depID, version string) string {
	var parts []string
	if depID != "" {
		parts = append(parts, "deployment "+depID)
	}
	if version != "" {
		parts = append(parts, "version "+version)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// readAppDefinition reads an app definition from path ("-": stdin) and
// returns it unchanged with its normalized id.
func readAppDefinition(path string) ([]byte, string, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(cliStdin)
		path = "standard input"
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, "", err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(data, se.Offset)
			return nil, "", fmt.Errorf("%s:%d:%d: invalid JSON: %v", path, line, col, err)
		}
		return nil, "", fmt.Errorf("%s: not a JSON app definition (an object): %v", path, err)
	}
	var id string
	if raw, ok := doc["id"]; !ok || json.Unmarshal(raw, &id) != nil || strings.Trim(strings.TrimSpace(id), "/") == "" {
		return nil, "", fmt.Errorf("%s: the app definition needs an \"id\" (a string such as \"/group/app\")", path)
	}
	return data, client.NormalizeAppID(id), nil
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col := 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

func appScale(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("atoll app scale", "atoll app scale ID N [--detach] [--timeout 5m] [--force] [--master URL]", stderr)
	df := addDeployFlags(fs)
	pos, code, ok := parseCommand(fs, args, 2, 2)
	if !ok {
		return code
	}
	n, err := strconv.Atoi(pos[1])
	if err != nil || n < 0 {
		fmt.Fprintf(stderr, "%s: N must be a whole number >= 0, not %q\n", fs.Name(), pos[1])
		return cliExitUsage
	}
	id := client.NormalizeAppID(pos[0])
	c := newClient(cf)
	depID, version, err := c.ScaleApp(ctx, id, n, df.force)
	if err != nil {
		return cliFail(stderr, fs.Name(), err)
	}
	fmt.Fprintf(stdout, "scaling app %s to %d instances%s\n", id, n, deploymentNote(depID, version))
	return df.finish(ctx, c, waitOp{appID: id, deploymentID: depID, verb: "scaling", pastVerb: "scaled"}, fs.Name(), stdout, stderr)
}

// appAction is a command that acts on one app by id and waits for the
// deployment it starts: restart and delete.
type appAction struct {
	name, verb, pastVerb string
	deleting             bool
	call                 func(c *client.Client, ctx context.Context, id string, force bool) (string, string, error)
}

func appRestart(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runAppAction(ctx, appAction{name: "restart", verb: "restarting", pastVerb: "restarted",
		call: (*client.Client).RestartApp}, args, stdout, stderr)
}

func appDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runAppAction(ctx, appAction{name: "delete", verb: "deleting", pastVerb: "deleted", deleting: true,
		call: (*client.Client).DeleteApp}, args, stdout, stderr)
}

func runAppAction(ctx context.Context, a appAction, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("atoll app "+a.name, "atoll app "+a.name+" ID [--detach] [--timeout 5m] [--force] [--master URL]", stderr)
	df := addDeployFlags(fs)
	pos, code, ok := parseCommand(fs, args, 1, 1)
	if !ok {
		return code
	}
	id := client.NormalizeAppID(pos[0])
	c := newClient(cf)
	depID, version, err := a.call(c, ctx, id, df.force)
	if err != nil {
		return cliFail(stderr, fs.Name(), err)
	}
	fmt.Fprintf(stdout, "%s app %s%s\n", a.verb, id, deploymentNote(depID, version))
	return df.finish(ctx, c, waitOp{appID: id, deploymentID: depID, verb: a.verb, pastVerb: a.pastVerb, deleting: a.deleting}, fs.Name(), stdout, stderr)
}

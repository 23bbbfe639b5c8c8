package master

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/atollhq/atoll/events"
)

// taskID makes a Marathon task id: "/group/app" -> "group_app.<uuid>".
func taskID(appID string) string {
	return strings.ReplaceAll(strings.TrimPrefix(appID, "/"), "/", "_") + "." + uuid.NewString()
}

var envNameUnsafe = regexp.MustCompile(`[^A-Za-z0-9_]`)

// envName makes a label or port name usable in an environment variable name.
func envName(s string) string { return strings.ToUpper(envNameUnsafe.ReplaceAllString(s, "_")) }

// taskEnv is the environment Marathon gives a task. HOST is the agent's
// advertised IP, not its hostname, so a task can bind to the address that
// DNS and HAProxy point at. The app's own env comes last and wins.
func taskEnv(app events.App, t events.Task, agent events.Agent) map[string]string {
	env := map[string]string{
		"HOST":                       agent.IP,
		"MARATHON_APP_ID":            app.ID,
		"MARATHON_APP_VERSION":       app.Version.UTC().Format("2006-01-02T15:04:05.000Z"),
		"MARATHON_APP_RESOURCE_CPUS": strconv.FormatFloat(app.Cpus, 'f', -1, 64),
		"MARATHON_APP_RESOURCE_MEM":  strconv.FormatFloat(app.Mem, 'f', 1, 64),
		"MARATHON_APP_RESOURCE_DISK": strconv.FormatFloat(app.Disk, 'f', 1, 64),
		"MESOS_TASK_ID":              t.ID,
		"MESOS_AGENT_ID":             t.AgentID,
	}
	// PORTn is the task's n-th host port; PORT_<p> the host port of the
	// port the app asked for as p (its service port, or for a bridged app
	// its container port), or of itself when it asked for any port
	// (Marathon's EnvironmentHelper.portsEnv).
	specs, requested := app.PortSpecs(), requestedPorts(app)
	ports := make([]string, len(t.Ports))
	for i, p := range t.Ports {
		ps := strconv.Itoa(p)
		ports[i] = ps
		env["PORT"+strconv.Itoa(i)] = ps
		if i < len(requested) && requested[i] != 0 {
			env["PORT_"+strconv.Itoa(requested[i])] = ps
		} else {
			env["PORT_"+ps] = ps
		}
		if i < len(specs) && specs[i].Name != "" {
			env["PORT_"+envName(specs[i].Name)] = ps
		}
	}
	if hasImage(app) {
		env["MARATHON_APP_DOCKER_IMAGE"] = app.Container.Docker.Image
	}
	if len(ports) > 0 {
		env["PORT"] = ports[0]
		env["PORTS"] = strings.Join(ports, ",")
	}
	var labels []string
	for k, v := range app.Labels {
		labels = append(labels, k)
		env["MARATHON_APP_LABEL_"+envName(k)] = v
	}
	if len(labels) > 0 {
		sort.Strings(labels)
		env["MARATHON_APP_LABELS"] = strings.Join(labels, " ")
	}
	for k, v := range app.Env {
		env[k] = v
	}
	return env
}

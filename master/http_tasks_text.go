package master

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"

	"github.com/atollhq/atoll/events"
)

// Marathon's text/plain task list (its EndpointsHelper), which scripts
// such as haproxy-marathon-bridge read with `Accept: text/plain`: a line
// per app and service port, "<app id, / as _>\t<service port>\t" and then
// "<host>:<host port>\t" for each running task; an app without service
// ports gets "<id>\t \t" and its running tasks' hosts, each followed by a
// space. A task without the port's host port shows :0, as in Marathon.

// wantsText reports whether the client asked for text/plain rather than
// JSON. Marathon serves text/plain at a low quality (qs=0.1), so JSON
// wins for */* and for clients that accept both.
func wantsText(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/plain") &&
		!strings.Contains(accept, "application/json") && !strings.Contains(accept, "*/*")
}

// writeTaskText writes the list for the entries' apps.
func writeTaskText(w http.ResponseWriter, entries []*appEntry) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	out := bufio.NewWriterSize(w, 64<<10)
	for _, e := range entries {
		if e.app == nil {
			continue
		}
		id := strings.ReplaceAll(strings.TrimPrefix(e.app.ID, "/"), "/", "_")
		specs := e.app.PortSpecs() // a bridged app's: its port mappings
		if len(specs) == 0 {
			out.WriteString(id + "\t \t")
			for _, t := range e.tasks.tasks {
				if t.State == events.TaskRunning {
					out.WriteString(t.Host + " ")
				}
			}
			out.WriteByte('\n')
			continue
		}
		for i, pd := range specs {
			out.WriteString(id + "\t" + strconv.Itoa(pd.Port) + "\t")
			for _, t := range e.tasks.tasks {
				if t.State != events.TaskRunning {
					continue
				}
				port := 0
				if i < len(t.Ports) {
					port = t.Ports[i]
				}
				out.WriteString(t.Host + ":" + strconv.Itoa(port) + "\t")
			}
			out.WriteByte('\n')
		}
	}
	_ = out.Flush()
}

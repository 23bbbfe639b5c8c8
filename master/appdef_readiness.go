package master

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/atollhq/atoll/events"
)

// Marathon's readinessChecks (readinessCheck.raml, readiness-checks.md):
// at most one per app, an HTTP(S) GET of path on the port named portName,
// every intervalSeconds, until one of httpStatusCodesForReady comes back.
// A deployment step waits for its new tasks to be ready (plan.go
// takesOver). atoll's agent runs the check next to the task, as it runs
// health checks, and tells the master once the task is ready.

// Marathon's defaults.
const (
	defaultReadinessName     = "readinessCheck"
	defaultReadinessPortName = "http-api"
	defaultReadinessInterval = 30
	defaultReadinessTimeout  = 10
)

const (
	msgOneReadinessCheck = "Only one readiness check is allowed"
	msgReadinessPort     = "Readiness check port name must name one of the app's port definitions"
	msgReadinessProtocol = "Invalid protocol. Only 'HTTP' and 'HTTPS' are allowed."
	msgReadinessTimeout  = "timeoutSeconds must be less than intervalSeconds"
	msgReadinessKeep     = "is not supported by atoll: the agent does not keep the last response"
)

func (r *reader) readinessChecks(p string, raw json.RawMessage) ([]events.ReadinessCheck, bool) {
	return each(r, p, raw, func(p string, raw json.RawMessage) (events.ReadinessCheck, bool) {
		obj, ok := r.object(p, raw)
		if !ok {
			return events.ReadinessCheck{}, false
		}
		rc := events.ReadinessCheck{
			Name: defaultReadinessName, Protocol: "HTTP", Path: "/", PortName: defaultReadinessPortName,
			IntervalSeconds: defaultReadinessInterval, TimeoutSeconds: defaultReadinessTimeout,
			HTTPStatusCodesForReady: []int{200},
		}
		good := opt(r, obj, p, "name", &rc.Name, r.str)
		good = opt(r, obj, p, "protocol", &rc.Protocol, r.str) && good
		good = opt(r, obj, p, "path", &rc.Path, r.str) && good
		good = opt(r, obj, p, "portName", &rc.PortName, r.str) && good
		good = opt(r, obj, p, "intervalSeconds", &rc.IntervalSeconds, r.integer) && good
		good = opt(r, obj, p, "timeoutSeconds", &rc.TimeoutSeconds, r.integer) && good
		good = opt(r, obj, p, "httpStatusCodesForReady", &rc.HTTPStatusCodesForReady, r.ints) && good
		good = opt(r, obj, p, "preserveLastResponse", &rc.PreserveLastResponse, r.boolean) && good
		return rc, good
	})
}

// validateReadiness checks an app's readiness checks against its ports.
func validateReadiness(errs *fieldErrs, a events.App) {
	if len(a.ReadinessChecks) > 1 {
		errs.add("/readinessChecks", msgOneReadinessCheck)
	}
	for i, rc := range a.ReadinessChecks {
		p := fmt.Sprintf("/readinessChecks(%d)", i)
		if rc.Protocol != "HTTP" && rc.Protocol != "HTTPS" {
			errs.add(p+"/protocol", msgReadinessProtocol)
		}
		named := false
		for _, pd := range a.PortSpecs() {
			named = named || pd.Name == rc.PortName
		}
		if !named {
			errs.add(p+"/portName", msgReadinessPort)
		}
		if rc.IntervalSeconds < 1 {
			errs.add(p+"/intervalSeconds", fmt.Sprintf("got %d, expected 1 or more", rc.IntervalSeconds))
		}
		if rc.TimeoutSeconds < 1 || rc.TimeoutSeconds >= rc.IntervalSeconds {
			errs.add(p+"/timeoutSeconds", msgReadinessTimeout)
		}
		if rc.PreserveLastResponse {
			errs.add(p+"/preserveLastResponse", msgReadinessKeep)
		}
		if len(rc.HTTPStatusCodesForReady) == 0 {
			errs.add(p+"/httpStatusCodesForReady", "must not be empty")
		}
		seen := map[int]bool{}
		for _, c := range rc.HTTPStatusCodesForReady {
			if c < 100 || c > 999 || seen[c] {
				errs.add(p+"/httpStatusCodesForReady", fmt.Sprintf("got %d, expected unique codes from 100 to 999", c))
			}
			seen[c] = true
		}
	}
}

// readinessResultView is one of Marathon's readinessCheckResults.
type readinessResultView struct {
	Name         string `json:"name"`
	TaskID       string `json:"taskId"`
	Ready        bool   `json:"ready"`
	LastResponse any    `json:"lastResponse"`
}

// readinessResults are the app's tasks' results: for each task whose
// agent has run the app's check, whether it is ready.
func readinessResults(a events.App, tasks []events.Task) []readinessResultView {
	out := []readinessResultView{}
	if len(a.ReadinessChecks) == 0 {
		return out
	}
	for _, t := range tasks {
		if t.State == events.TaskRunning && current(a, t) {
			out = append(out, readinessResultView{Name: a.ReadinessChecks[0].Name, TaskID: t.ID, Ready: t.Ready != nil && *t.Ready})
		}
	}
	return out
}

// readinessProbe is the app's readiness check as the agent runs it on
// task t: its port name resolved to the task's host port.
func readinessProbe(a events.App, t events.Task) *events.ReadinessProbe {
	if len(a.ReadinessChecks) == 0 {
		return nil
	}
	rc := a.ReadinessChecks[0]
	for i, pd := range a.PortSpecs() {
		if pd.Name == rc.PortName && i < len(t.Ports) {
			return &events.ReadinessProbe{
				Protocol: rc.Protocol, Path: rc.Path, Port: t.Ports[i],
				Interval: time.Duration(rc.IntervalSeconds) * time.Second,
				Timeout:  time.Duration(rc.TimeoutSeconds) * time.Second,
				Codes:    rc.HTTPStatusCodesForReady,
			}
		}
	}
	return nil
}

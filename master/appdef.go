package master

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/atollhq/atoll/events"
)

// App definitions as the Marathon v2 API takes them: decoding (with the
// type errors Marathon reports), defaults, partial updates and validation.
// Everything here is pure, so the HTTP layer can refuse a bad body before
// anything changes.

// InvalidJSONError is Marathon's 400: a body that is not JSON, or a field of
// the wrong JSON type. Details name the fields, as Marathon's play-json
// errors do ("/instances": "error.expected.jsnumber").
type InvalidJSONError struct {
	Message string
	Details []FieldErrors
}

func (e *InvalidJSONError) Error() string {
	var parts []string
	for _, d := range e.Details {
		parts = append(parts, d.Path+": "+strings.Join(d.Errors, "; "))
	}
	return e.Message + ": " + strings.Join(parts, ", ")
}

// Marathon's defaults for an app (AppDefinition, app.raml, healthCheck.raml).
const (
	defaultInstances             = 1
	defaultCpus                  = 1.0
	defaultMem                   = 128.0
	defaultDisk                  = 0.0
	defaultBackoffSeconds        = 1.0
	defaultBackoffFactor         = 1.15
	defaultMaxLaunchDelaySeconds = 3600.0 // AppDefinition.DefaultMaxLaunchDelay = 1.hour
	defaultHCGracePeriod         = 300
	defaultHCInterval            = 60
	defaultHCTimeout             = 20
	defaultHCMaxFailures         = 3
	defaultHCDelay               = 15
	// singleInstanceLabel marks an app that must never run twice (Marathon's
	// Apps.LabelSingleInstanceApp).
	singleInstanceLabel = "MARATHON_SINGLE_INSTANCE_APP"
)

// Validation messages. Where Marathon has one, the text is Marathon's
// (AppValidation, PathId, accord's ordering combinators), so clients that
// match on it keep working.
const (
	msgInvalidJSON   = "Invalid JSON"
	msgNoContent     = "Please specify data in JSON format"
	msgCmdOrArgs     = "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
	msgEmptyPath     = "Path must contain at least one path element"
	msgReservedID    = "must not end with any of the following reserved keywords: restart, tasks, versions, ., .."
	msgDotSegment    = "must not contain '.' or '..' path segments"
	msgPortsUnique   = "Ports must be unique."
	msgPortNames     = "Port names must be unique."
	msgPortsAndDefs  = "cannot specify both ports and port definitions"
	msgProtocol      = "Invalid protocol. Only 'udp', 'tcp' and 'udp,tcp' are allowed."
	msgHCPortIndex   = "Health check port indices must address an element of the ports array or container port mappings."
	msgHCPortAndIdx  = "must not specify both port and portIndex"
	msgHCCommand     = "is required for protocol COMMAND"
	msgHCNoCommand   = "is only allowed for protocol COMMAND"
	msgSingleInst    = "Single instance app may only have one instance"
	msgSecretEnv     = "secret references are not supported"
	msgIDMismatch    = "must match the app id in the URL"
	msgEnvNameEmpty  = "must not be empty"
	msgEnvNameEquals = "must not contain '=': a variable's name ends at the first '='"
	msgNUL           = "must not contain the NUL character: no process can be given it"
	fmtIDTooLong     = "is %d characters long, expected at most %d: a task's id is the app id plus %d characters, " +
		"agents name the task's sandbox folder after it, and a folder name holds at most %d bytes"
	fmtTooMany       = "got %d, expected %d or less (the master's --max-instances-per-app)"
	fmtIDSegment     = "must fully match regular expression '%s'"
	errExpString     = "error.expected.jsstring"
	errExpNumber     = "error.expected.jsnumber"
	errExpInt        = "error.expected.int"
	errExpBool       = "error.expected.jsboolean"
	errExpArray      = "error.expected.jsarray"
	errExpObject     = "error.expected.jsobject"
	errPathMissing   = "error.path.missing"
	noContentDetails = "No content to map due to end-of-input"
)

// idSegment is Marathon's rule for each segment of an app id. Marathon's
// own pattern also admits "." and ".." (it resolves them against a base);
// atoll takes absolute ids only and refuses those segments.
var idSegment = regexp.MustCompile(`^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$`)

// idSegmentMessage quotes the pattern as Marathon does in its 422.
var idSegmentMessage = fmt.Sprintf(fmtIDSegment, `^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$`)

// App ids are bounded by what agents can run. A task's id is the app id
// without its leading '/', plus '.' and a 36-character UUID (taskID), and
// each agent names the task's sandbox folder after it (agent.taskDir); a
// folder name holds at most 255 bytes (NAME_MAX of Linux file systems).
// Ids are ASCII (idSegment), so characters are bytes. Marathon's PathId
// rules (PathIdValidation, stringTypes.raml) set no length limit: there
// such an app is accepted and then fails at the Mesos agent, whose
// sandbox path holds the task id as one folder name too.
const (
	maxFileNameBytes = 255
	taskIDExtraLen   = len(".") + 36 - len("/")
	maxAppIDLen      = maxFileNameBytes - taskIDExtraLen
)

// DefaultMaxInstancesPerApp is Config.MaxInstancesPerApp's default: far
// above any app a cluster of this size runs, low enough that a typo
// (instances: 100000) cannot flood the state, the agents and the load
// balancers with tasks. Marathon has no such flag (its
// --max_instances_per_offer bounds launches per offer, not an app).
const DefaultMaxInstancesPerApp = 1000

// appLimits are the operator's bounds on app definitions (Config).
type appLimits struct {
	maxInstances int
}

// healthProtocols are Marathon's AppHealthCheckProtocol values.
var healthProtocols = []string{"HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"}

// appForCreate turns a POST /v2/apps body into the complete app to create:
// Marathon's defaults for whatever the body leaves out.
func appForCreate(body []byte, lim appLimits) (events.App, error) {
	p, err := decodeAppPatch(body)
	if err != nil {
		return events.App{}, err
	}
	bodyID, ok := value[string](p, "id")
	if !ok {
		return events.App{}, &InvalidJSONError{Message: msgInvalidJSON,
			Details: []FieldErrors{{Path: "/id", Errors: []string{errPathMissing}}}}
	}
	var errs fieldErrs
	id, idErrs := normalizeAppID(bodyID)
	errs.add("/id", idErrs...)
	app := p.applyTo(defaultApp(id))
	return finish(app, p, errs, lim)
}

// appForUpdate turns a PUT /v2/apps/{id} body into the complete app that
// replaces existing (nil when the app is new). With partial, what the body
// leaves out keeps its existing value (Marathon's default for PUT);
// without, it takes the default, as for a new app.
func appForUpdate(urlID string, existing *events.App, body []byte, partial bool, lim appLimits) (events.App, error) {
	p, err := decodeAppPatch(body)
	if err != nil {
		return events.App{}, err
	}
	var errs fieldErrs
	id, idErrs := normalizeAppID(urlID)
	errs.add("/id", idErrs...)
	if raw, ok := value[string](p, "id"); ok && len(idErrs) == 0 {
		// The URL names the app; a body that names another is a mistake
		// that must not silently change the other app.
		if bodyID, bodyErrs := normalizeAppID(raw); len(bodyErrs) > 0 {
			errs.add("/id", bodyErrs...)
		} else if bodyID != id {
			errs.add("/id", msgIDMismatch+" '"+id+"'")
		}
	}
	base := defaultApp(id)
	if existing != nil && partial {
		base = cloneApp(*existing)
	}
	app := p.applyTo(base)
	return finish(app, p, errs, lim)
}

// finish validates the merged app and returns it, or the 422.
func finish(app events.App, p *appPatch, errs fieldErrs, lim appLimits) (events.App, error) {
	errs.merge(p.invalid)
	for _, e := range appSchema {
		if e.given != nil {
			e.given(&errs, p)
		}
	}
	errs.merge(validateApp(app, lim))
	if len(errs) > 0 {
		return events.App{}, &ValidationError{Details: errs}
	}
	return app, nil
}

// normalizeAppID makes an id absolute ("web" -> "/web"), drops empty
// segments and the trailing "/", and says what is wrong with it.
func normalizeAppID(raw string) (string, []string) {
	var segs []string
	for _, s := range strings.Split(raw, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	id := "/" + strings.Join(segs, "/")
	if len(segs) == 0 {
		return id, []string{msgEmptyPath}
	}
	var errs []string
	for _, s := range segs {
		if s == "." || s == ".." {
			errs = append(errs, msgDotSegment)
			break
		}
	}
	for _, s := range segs {
		if s != "." && s != ".." && !idSegment.MatchString(s) {
			errs = append(errs, idSegmentMessage)
			break
		}
	}
	// The API routes /v2/apps/{id}/tasks and /restart: an id ending so
	// could not be addressed.
	switch segs[len(segs)-1] {
	case "restart", "tasks", "versions":
		errs = append(errs, msgReservedID)
	}
	if len(id) > maxAppIDLen {
		errs = append(errs, fmt.Sprintf(fmtIDTooLong, len(id), maxAppIDLen, taskIDExtraLen, maxFileNameBytes))
	}
	return id, errs
}

// clonePortDefinitions copies the app's port definitions and their labels.
func clonePortDefinitions(a *events.App) {
	a.PortDefinitions = slices.Clone(a.PortDefinitions)
	for i := range a.PortDefinitions {
		a.PortDefinitions[i].Labels = maps.Clone(a.PortDefinitions[i].Labels)
	}
}

// cloneConstraints copies the app's constraints, each of them too.
func cloneConstraints(a *events.App) {
	if a.Constraints != nil {
		cs := make([][]string, len(a.Constraints))
		for i, c := range a.Constraints {
			cs[i] = slices.Clone(c)
		}
		a.Constraints = cs
	}
}

// optString is s, or nil (JSON null) when empty. The copy is made only
// then: &s would move every s to the heap.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	p := new(string)
	*p = s
	return p
}

// optFloat is v, or nil (JSON null) when 0.
func optFloat(v float64) *float64 {
	if v == 0 {
		return nil
	}
	p := new(float64)
	*p = v
	return p
}

func portNumbers(defs []events.PortDefinition) []int {
	out := make([]int, len(defs))
	for i, d := range defs {
		out[i] = d.Port
	}
	return out
}

// fieldErrs collects errors per path, in the order paths first fail.
type fieldErrs []FieldErrors

func (f *fieldErrs) add(path string, msgs ...string) {
	if len(msgs) == 0 {
		return
	}
	for i := range *f {
		if (*f)[i].Path == path {
			(*f)[i].Errors = append((*f)[i].Errors, msgs...)
			return
		}
	}
	*f = append(*f, FieldErrors{Path: path, Errors: append([]string(nil), msgs...)})
}

func (f *fieldErrs) merge(other []FieldErrors) {
	for _, fe := range other {
		f.add(fe.Path, fe.Errors...)
	}
}

// fmtDouble prints a number as Scala prints a Double (1.0, 0.5), which is
// how Marathon's messages show cpus, mem and capacities.
func fmtDouble(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// fmtInt prints a number that Marathon keeps as an Int.
func fmtInt(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

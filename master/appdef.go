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

// appPatch is an app JSON as given: a nil field was absent (or null), so a
// PUT keeps the existing value. Slices and maps are fresh copies.
type appPatch struct {
	ID                         *string
	Cmd                        *string
	Args                       *[]string
	User                       *string
	Instances                  *int
	Cpus, Mem, Disk            *float64
	Ports                      *[]int
	PortDefinitions            *[]events.PortDefinition
	RequirePorts               *bool
	Constraints                *[][]string
	Labels, Env                *map[string]string
	HealthChecks               *[]events.HealthCheck
	UpgradeStrategy            *events.UpgradeStrategy
	BackoffSeconds             *float64
	BackoffFactor              *float64
	MaxLaunchDelaySeconds      *float64
	TaskKillGracePeriodSeconds *float64
	Dependencies               *[]string
	KillSelection              *string
	Fetch                      *[]events.FetchURI
	ReadinessChecks            *[]events.ReadinessCheck
	UnreachableStrategy        *events.UnreachableStrategy
	URIs                       *[]string
	containers                 containerPatch // container, networks: appdef_container.go
	// invalid are 422 findings made while decoding (secret references in
	// env), reported together with the validation of the merged app.
	invalid []FieldErrors
}

// appForCreate turns a POST /v2/apps body into the complete app to create:
// Marathon's defaults for whatever the body leaves out.
func appForCreate(body []byte, lim appLimits) (events.App, error) {
	p, err := decodeAppPatch(body)
	if err != nil {
		return events.App{}, err
	}
	if p.ID == nil {
		return events.App{}, &InvalidJSONError{Message: msgInvalidJSON,
			Details: []FieldErrors{{Path: "/id", Errors: []string{errPathMissing}}}}
	}
	var errs fieldErrs
	id, idErrs := normalizeAppID(*p.ID)
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
	if p.ID != nil && len(idErrs) == 0 {
		// The URL names the app; a body that names another is a mistake
		// that must not silently change the other app.
		if bodyID, bodyErrs := normalizeAppID(*p.ID); len(bodyErrs) > 0 {
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
	if p.Ports != nil && p.PortDefinitions != nil && !slices.Equal(*p.Ports, portNumbers(*p.PortDefinitions)) {
		errs.add("/", msgPortsAndDefs)
	}
	if p.Fetch != nil && p.URIs != nil && len(*p.Fetch) > 0 && len(*p.URIs) > 0 {
		errs.add("/uris", msgFetchWithURIs)
	}
	errs.merge(validateApp(app, lim))
	if len(errs) > 0 {
		return events.App{}, &ValidationError{Details: errs}
	}
	return app, nil
}

// defaultApp is Marathon's app with nothing but an id: one instance of
// 1 cpu and 128 MB, one random service port named "default".
func defaultApp(id string) events.App {
	return events.App{
		ID:                    id,
		Instances:             defaultInstances,
		Cpus:                  defaultCpus,
		Mem:                   defaultMem,
		Disk:                  defaultDisk,
		PortDefinitions:       []events.PortDefinition{{Port: 0, Protocol: "tcp", Name: "default"}},
		Constraints:           [][]string{},
		Labels:                map[string]string{},
		Env:                   map[string]string{},
		HealthChecks:          []events.HealthCheck{},
		UpgradeStrategy:       events.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1},
		BackoffSeconds:        defaultBackoffSeconds,
		BackoffFactor:         defaultBackoffFactor,
		MaxLaunchDelaySeconds: defaultMaxLaunchDelaySeconds,
	}
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

// applyTo merges the patch onto base and returns the result; base is not
// changed. The id is base's: callers normalize and check the patch's.
func (p *appPatch) applyTo(base events.App) events.App {
	a := base
	set(&a.User, p.User)
	set(&a.Instances, p.Instances)
	set(&a.Cpus, p.Cpus)
	set(&a.Mem, p.Mem)
	set(&a.Disk, p.Disk)
	set(&a.RequirePorts, p.RequirePorts)
	set(&a.Constraints, p.Constraints)
	set(&a.Labels, p.Labels)
	set(&a.Env, p.Env)
	set(&a.HealthChecks, p.HealthChecks)
	set(&a.UpgradeStrategy, p.UpgradeStrategy)
	set(&a.BackoffSeconds, p.BackoffSeconds)
	set(&a.BackoffFactor, p.BackoffFactor)
	set(&a.MaxLaunchDelaySeconds, p.MaxLaunchDelaySeconds)
	set(&a.TaskKillGracePeriodSeconds, p.TaskKillGracePeriodSeconds)
	if p.Dependencies != nil {
		a.Dependencies = resolveDependencies(a.ID, *p.Dependencies) // groups_path.go
	}
	set(&a.KillSelection, p.KillSelection)
	set(&a.ReadinessChecks, p.ReadinessChecks)
	if p.UnreachableStrategy != nil {
		us := *p.UnreachableStrategy
		a.UnreachableStrategy = &us
	}
	switch {
	case p.Fetch != nil:
		a.Fetch = *p.Fetch
	case p.URIs != nil:
		a.Fetch = fetchOfURIs(*p.URIs)
	}

	// cmd and args exclude each other: giving one drops the other, so a
	// PUT can switch an app from cmd to args.
	switch {
	case p.Cmd != nil && p.Args != nil:
		a.Cmd, a.Args = *p.Cmd, *p.Args
	case p.Cmd != nil:
		a.Cmd = *p.Cmd
		if a.Cmd != "" {
			a.Args = nil
		}
	case p.Args != nil:
		a.Args = *p.Args
		if len(a.Args) > 0 {
			a.Cmd = ""
		}
	}

	// portDefinitions win over the legacy ports (finish reports the two
	// when they disagree).
	switch {
	case p.PortDefinitions != nil:
		a.PortDefinitions = *p.PortDefinitions
	case p.Ports != nil:
		defs := make([]events.PortDefinition, len(*p.Ports))
		for i, port := range *p.Ports {
			defs[i] = events.PortDefinition{Port: port, Protocol: "tcp"}
		}
		a.PortDefinitions = defs
	}
	p.applyContainer(&a) // appdef_container.go
	return a
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// cloneApp copies the app's slices and maps so a merge never writes into
// a record the state holds. Nil stays nil: the core compares old and new
// apps to tell scaling from a config change.
func cloneApp(a events.App) events.App {
	a.Args = slices.Clone(a.Args)
	a.PortDefinitions = slices.Clone(a.PortDefinitions)
	for i := range a.PortDefinitions {
		a.PortDefinitions[i].Labels = maps.Clone(a.PortDefinitions[i].Labels)
	}
	if a.Constraints != nil {
		cs := make([][]string, len(a.Constraints))
		for i, c := range a.Constraints {
			cs[i] = slices.Clone(c)
		}
		a.Constraints = cs
	}
	a.Labels = maps.Clone(a.Labels)
	a.Env = maps.Clone(a.Env)
	a.HealthChecks = slices.Clone(a.HealthChecks)
	a.Dependencies = slices.Clone(a.Dependencies)
	a.Container = cloneContainer(a.Container)
	a.Networks = slices.Clone(a.Networks)
	return a
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

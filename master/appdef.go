package master

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/master/scheduler"
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
	// invalid are 422 findings made while decoding (secret references in
	// env), reported together with the validation of the merged app.
	invalid []FieldErrors
}

// appForCreate turns a POST /v2/apps body into the complete app to create:
// Marathon's defaults for whatever the body leaves out.
func appForCreate(body []byte) (events.App, error) {
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
	return finish(app, p, errs)
}

// appForUpdate turns a PUT /v2/apps/{id} body into the complete app that
// replaces existing (nil when the app is new). With partial, what the body
// leaves out keeps its existing value (Marathon's default for PUT);
// without, it takes the default, as for a new app.
func appForUpdate(urlID string, existing *events.App, body []byte, partial bool) (events.App, error) {
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
	return finish(app, p, errs)
}

// finish validates the merged app and returns it, or the 422.
func finish(app events.App, p *appPatch, errs fieldErrs) (events.App, error) {
	errs.merge(p.invalid)
	if p.Ports != nil && p.PortDefinitions != nil && !slices.Equal(*p.Ports, portNumbers(*p.PortDefinitions)) {
		errs.add("/", msgPortsAndDefs)
	}
	errs.merge(validateApp(app))
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

// decodeAppPatch reads an app JSON object. A body that is not JSON, or a
// field of the wrong type, is an *InvalidJSONError naming every such field.
func decodeAppPatch(body []byte) (*appPatch, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &InvalidJSONError{Message: msgNoContent,
			Details: []FieldErrors{{Path: "/", Errors: []string{noContentDetails}}}}
	}
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v) // for the parser's message
		return nil, &InvalidJSONError{Message: msgInvalidJSON,
			Details: []FieldErrors{{Path: "/", Errors: []string{err.Error()}}}}
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil || obj == nil {
		return nil, &InvalidJSONError{Message: msgInvalidJSON,
			Details: []FieldErrors{{Path: "/", Errors: []string{errExpObject}}}}
	}
	r := &reader{}
	p := &appPatch{
		ID:                         field(r, obj, "id", r.str),
		Cmd:                        field(r, obj, "cmd", r.str),
		Args:                       field(r, obj, "args", r.strs),
		User:                       field(r, obj, "user", r.str),
		Instances:                  field(r, obj, "instances", r.integer),
		Cpus:                       field(r, obj, "cpus", r.number),
		Mem:                        field(r, obj, "mem", r.number),
		Disk:                       field(r, obj, "disk", r.number),
		Ports:                      field(r, obj, "ports", r.ints),
		PortDefinitions:            field(r, obj, "portDefinitions", r.portDefinitions),
		RequirePorts:               field(r, obj, "requirePorts", r.boolean),
		Constraints:                field(r, obj, "constraints", r.constraints),
		Labels:                     field(r, obj, "labels", r.strMap),
		Env:                        field(r, obj, "env", r.env),
		HealthChecks:               field(r, obj, "healthChecks", r.healthChecks),
		UpgradeStrategy:            field(r, obj, "upgradeStrategy", r.upgradeStrategy),
		BackoffSeconds:             field(r, obj, "backoffSeconds", r.number),
		BackoffFactor:              field(r, obj, "backoffFactor", r.number),
		MaxLaunchDelaySeconds:      field(r, obj, "maxLaunchDelaySeconds", r.number),
		TaskKillGracePeriodSeconds: field(r, obj, "taskKillGracePeriodSeconds", r.number),
	}
	if len(r.typeErrs) > 0 {
		return nil, &InvalidJSONError{Message: msgInvalidJSON, Details: r.typeErrs}
	}
	p.invalid = r.invalid
	return p, nil
}

// field reads obj[key] with read; absent and null are both nil.
func field[T any](r *reader, obj map[string]json.RawMessage, key string, read func(string, json.RawMessage) (T, bool)) *T {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		return nil
	}
	v, ok := read("/"+key, raw)
	if !ok {
		return nil
	}
	return &v
}

// reader decodes JSON values by hand so every type error carries its path
// ("/portDefinitions(1)/port"), which encoding/json's errors do not.
type reader struct {
	typeErrs fieldErrs // 400
	invalid  fieldErrs // 422
}

func (r *reader) fail(path, msg string) { r.typeErrs.add(path, msg) }

// kind is the first byte of a JSON value: '"', '{', '[', 't', 'f', 'n' or
// the start of a number.
func kind(raw json.RawMessage) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

func isNull(raw json.RawMessage) bool { return kind(raw) == 'n' }

func isNumber(raw json.RawMessage) bool {
	k := kind(raw)
	return k == '-' || (k >= '0' && k <= '9')
}

func (r *reader) str(path string, raw json.RawMessage) (string, bool) {
	var s string
	if kind(raw) != '"' || json.Unmarshal(raw, &s) != nil {
		r.fail(path, errExpString)
		return "", false
	}
	return s, true
}

func (r *reader) number(path string, raw json.RawMessage) (float64, bool) {
	var v float64
	if !isNumber(raw) || json.Unmarshal(raw, &v) != nil {
		r.fail(path, errExpNumber)
		return 0, false
	}
	return v, true
}

// integer reads a number that must be a whole int32, as Marathon's ints are.
func (r *reader) integer(path string, raw json.RawMessage) (int, bool) {
	v, ok := r.number(path, raw)
	if !ok {
		return 0, false
	}
	if v != math.Trunc(v) || v < math.MinInt32 || v > math.MaxInt32 {
		r.fail(path, errExpInt)
		return 0, false
	}
	return int(v), true
}

func (r *reader) boolean(path string, raw json.RawMessage) (bool, bool) {
	var b bool
	if k := kind(raw); (k != 't' && k != 'f') || json.Unmarshal(raw, &b) != nil {
		r.fail(path, errExpBool)
		return false, false
	}
	return b, true
}

func (r *reader) array(path string, raw json.RawMessage) ([]json.RawMessage, bool) {
	var items []json.RawMessage
	if kind(raw) != '[' || json.Unmarshal(raw, &items) != nil {
		r.fail(path, errExpArray)
		return nil, false
	}
	return items, true
}

func (r *reader) object(path string, raw json.RawMessage) (map[string]json.RawMessage, bool) {
	var obj map[string]json.RawMessage
	if kind(raw) != '{' || json.Unmarshal(raw, &obj) != nil {
		r.fail(path, errExpObject)
		return nil, false
	}
	return obj, true
}

// each reads every element of an array with read; path(i) is Marathon's
// (play-json's) way to address element i.
func each[T any](r *reader, path string, raw json.RawMessage, read func(string, json.RawMessage) (T, bool)) ([]T, bool) {
	items, ok := r.array(path, raw)
	if !ok {
		return nil, false
	}
	out := make([]T, 0, len(items))
	good := true
	for i, item := range items {
		v, ok := read(fmt.Sprintf("%s(%d)", path, i), item)
		good = good && ok
		out = append(out, v)
	}
	return out, good
}

func (r *reader) strs(path string, raw json.RawMessage) ([]string, bool) {
	return each(r, path, raw, r.str)
}

func (r *reader) ints(path string, raw json.RawMessage) ([]int, bool) {
	return each(r, path, raw, r.integer)
}

func (r *reader) constraints(path string, raw json.RawMessage) ([][]string, bool) {
	return each(r, path, raw, r.strs)
}

// strMap reads an object of strings (labels), in key order for stable errors.
func (r *reader) strMap(path string, raw json.RawMessage) (map[string]string, bool) {
	obj, ok := r.object(path, raw)
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(obj))
	good := true
	for _, k := range sortedKeys(obj) {
		s, ok := r.str(path+"/"+k, obj[k])
		good = good && ok
		out[k] = s
	}
	return out, good
}

// env is strMap, except that Marathon's secret references ({"secret":
// "name"}) are well-formed but unsupported: a 422, not a 400.
func (r *reader) env(path string, raw json.RawMessage) (map[string]string, bool) {
	obj, ok := r.object(path, raw)
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(obj))
	good := true
	for _, k := range sortedKeys(obj) {
		if kind(obj[k]) == '{' {
			r.invalid.add(path+"/"+k, msgSecretEnv)
			continue
		}
		s, ok := r.str(path+"/"+k, obj[k])
		good = good && ok
		out[k] = s
	}
	return out, good
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// opt reads obj[key] into *dst when present and not null.
func opt[T any](r *reader, obj map[string]json.RawMessage, path, key string, dst *T, read func(string, json.RawMessage) (T, bool)) bool {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		return true
	}
	v, ok := read(path+"/"+key, raw)
	if ok {
		*dst = v
	}
	return ok
}

func (r *reader) portDefinitions(path string, raw json.RawMessage) ([]events.PortDefinition, bool) {
	return each(r, path, raw, func(p string, raw json.RawMessage) (events.PortDefinition, bool) {
		obj, ok := r.object(p, raw)
		if !ok {
			return events.PortDefinition{}, false
		}
		pd := events.PortDefinition{Protocol: "tcp"}
		good := opt(r, obj, p, "port", &pd.Port, r.integer)
		good = opt(r, obj, p, "protocol", &pd.Protocol, r.str) && good
		good = opt(r, obj, p, "name", &pd.Name, r.str) && good
		good = opt(r, obj, p, "labels", &pd.Labels, r.strMap) && good
		return pd, good
	})
}

// healthChecks reads Marathon app health checks and fills their defaults.
func (r *reader) healthChecks(path string, raw json.RawMessage) ([]events.HealthCheck, bool) {
	return each(r, path, raw, func(p string, raw json.RawMessage) (events.HealthCheck, bool) {
		obj, ok := r.object(p, raw)
		if !ok {
			return events.HealthCheck{}, false
		}
		hc := events.HealthCheck{
			GracePeriodSeconds:     defaultHCGracePeriod,
			IntervalSeconds:        defaultHCInterval,
			TimeoutSeconds:         defaultHCTimeout,
			MaxConsecutiveFailures: defaultHCMaxFailures,
			DelaySeconds:           defaultHCDelay,
		}
		var portIndex, port int
		var command map[string]json.RawMessage
		good := opt(r, obj, p, "protocol", &hc.Protocol, r.str)
		good = opt(r, obj, p, "path", &hc.Path, r.str) && good
		good = opt(r, obj, p, "gracePeriodSeconds", &hc.GracePeriodSeconds, r.integer) && good
		good = opt(r, obj, p, "intervalSeconds", &hc.IntervalSeconds, r.integer) && good
		good = opt(r, obj, p, "timeoutSeconds", &hc.TimeoutSeconds, r.integer) && good
		good = opt(r, obj, p, "maxConsecutiveFailures", &hc.MaxConsecutiveFailures, r.integer) && good
		good = opt(r, obj, p, "delaySeconds", &hc.DelaySeconds, r.integer) && good
		good = opt(r, obj, p, "ignoreHttp1xx", &hc.IgnoreHTTP1xx, r.boolean) && good
		if raw, ok := obj["portIndex"]; ok && !isNull(raw) {
			if good = opt(r, obj, p, "portIndex", &portIndex, r.integer) && good; good {
				hc.PortIndex = &portIndex
			}
		}
		if raw, ok := obj["port"]; ok && !isNull(raw) {
			if good = opt(r, obj, p, "port", &port, r.integer) && good; good {
				hc.Port = &port
			}
		}
		if raw, ok := obj["command"]; ok && !isNull(raw) {
			if good = opt(r, obj, p, "command", &command, r.object) && good; good {
				var value string
				if good = opt(r, command, p+"/command", "value", &value, r.str) && good; good {
					hc.Command = &struct {
						Value string `json:"value"`
					}{Value: value}
				}
			}
		}
		return healthCheckDefaults(hc), good
	})
}

// healthCheckDefaults fills what Marathon's normalization fills: protocol
// HTTP (COMMAND when only a command is given), path "/" for HTTP checks,
// and portIndex 0 for checks that need a port but name none.
func healthCheckDefaults(hc events.HealthCheck) events.HealthCheck {
	if hc.Protocol == "" {
		hc.Protocol = "HTTP"
		if hc.Command != nil {
			hc.Protocol = "COMMAND"
		}
	}
	switch hc.Protocol {
	case "HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS":
		if hc.Path == "" {
			hc.Path = "/"
		}
	}
	if hc.Protocol != "COMMAND" && hc.Port == nil && hc.PortIndex == nil {
		zero := 0
		hc.PortIndex = &zero
	}
	return hc
}

// upgradeStrategy reads the object; a capacity left out is 1, Marathon's
// default for both.
func (r *reader) upgradeStrategy(path string, raw json.RawMessage) (events.UpgradeStrategy, bool) {
	us := events.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1}
	obj, ok := r.object(path, raw)
	if !ok {
		return us, false
	}
	good := opt(r, obj, path, "minimumHealthCapacity", &us.MinimumHealthCapacity, r.number)
	good = opt(r, obj, path, "maximumOverCapacity", &us.MaximumOverCapacity, r.number) && good
	return us, good
}

// validateApp checks a complete app by Marathon's rules and returns the
// failures per JSON path; none means the app may be committed. The id is
// checked by normalizeAppID, where it is read.
func validateApp(a events.App) []FieldErrors {
	var errs fieldErrs
	if (a.Cmd != "") == (len(a.Args) > 0) {
		errs.add("/", msgCmdOrArgs)
	}
	if a.Instances < 0 {
		errs.add("/instances", fmt.Sprintf("got %d, expected 0 or more", a.Instances))
	}
	if a.Labels[singleInstanceLabel] == "true" && a.Instances > 1 {
		errs.add("/", msgSingleInst)
	}
	atLeast(&errs, "/cpus", a.Cpus, 0, fmtDouble)
	atLeast(&errs, "/mem", a.Mem, 0, fmtDouble)
	atLeast(&errs, "/disk", a.Disk, 0, fmtDouble)
	atLeast(&errs, "/backoffSeconds", a.BackoffSeconds, 0, fmtInt)
	atLeast(&errs, "/backoffFactor", a.BackoffFactor, 1, fmtDouble)
	atLeast(&errs, "/maxLaunchDelaySeconds", a.MaxLaunchDelaySeconds, 0, fmtInt)
	atLeast(&errs, "/taskKillGracePeriodSeconds", a.TaskKillGracePeriodSeconds, 0, fmtInt)
	validatePorts(&errs, a.PortDefinitions)
	for _, fe := range constraintErrors(a.Constraints) {
		errs.add(fe.Path, fe.Errors...)
	}
	for i, hc := range a.HealthChecks {
		validateHealthCheck(&errs, fmt.Sprintf("/healthChecks(%d)", i), hc, len(a.PortDefinitions))
	}
	us := a.UpgradeStrategy
	between(&errs, "/upgradeStrategy/minimumHealthCapacity", us.MinimumHealthCapacity, 0, 1, fmtDouble)
	between(&errs, "/upgradeStrategy/maximumOverCapacity", us.MaximumOverCapacity, 0, 1, fmtDouble)
	if a.Labels[singleInstanceLabel] == "true" {
		// Two instances of a single-instance app must never overlap.
		if us.MinimumHealthCapacity != 0 {
			errs.add("/upgradeStrategy/minimumHealthCapacity", fmt.Sprintf("got %s, expected 0.0", fmtDouble(us.MinimumHealthCapacity)))
		}
		if us.MaximumOverCapacity != 0 {
			errs.add("/upgradeStrategy/maximumOverCapacity", fmt.Sprintf("got %s, expected 0.0", fmtDouble(us.MaximumOverCapacity)))
		}
	}
	return errs
}

// atLeast is accord's "should be >= min".
func atLeast(errs *fieldErrs, path string, v, min float64, format func(float64) string) {
	if v < min || math.IsNaN(v) {
		errs.add(path, fmt.Sprintf("got %s, expected %s or more", format(v), format(min)))
	}
}

// between is accord's "is between(lo, hi)", inclusive.
func between(errs *fieldErrs, path string, v, lo, hi float64, format func(float64) string) {
	if v < lo || v > hi || math.IsNaN(v) {
		errs.add(path, fmt.Sprintf("got %s, expected between %s and %s", format(v), format(lo), format(hi)))
	}
}

func validatePorts(errs *fieldErrs, defs []events.PortDefinition) {
	seenPort := map[int]bool{}
	seenName := map[string]bool{}
	dupPort, dupName := false, false
	for i, pd := range defs {
		path := fmt.Sprintf("/portDefinitions(%d)", i)
		between(errs, path+"/port", float64(pd.Port), 0, 65535, fmtInt)
		if !validProtocol(pd.Protocol) {
			errs.add(path+"/protocol", msgProtocol)
		}
		// Port 0 asks for a random service port; many may.
		if pd.Port != 0 {
			dupPort = dupPort || seenPort[pd.Port]
			seenPort[pd.Port] = true
		}
		if pd.Name != "" {
			dupName = dupName || seenName[pd.Name]
			seenName[pd.Name] = true
		}
	}
	if dupPort {
		errs.add("/portDefinitions", msgPortsUnique)
	}
	if dupName {
		errs.add("/portDefinitions", msgPortNames)
	}
}

func validProtocol(p string) bool {
	for _, part := range strings.Split(p, ",") {
		if part != "tcp" && part != "udp" {
			return false
		}
	}
	return true
}

func validateHealthCheck(errs *fieldErrs, path string, hc events.HealthCheck, ports int) {
	if !slices.Contains(healthProtocols, hc.Protocol) {
		errs.add(path+"/protocol", fmt.Sprintf("got %q, expected one of: %s", hc.Protocol, strings.Join(healthProtocols, ", ")))
	}
	if hc.Protocol == "COMMAND" {
		if hc.Command == nil || hc.Command.Value == "" {
			errs.add(path+"/command", msgHCCommand)
		}
	} else if hc.Command != nil {
		errs.add(path+"/command", msgHCNoCommand)
	}
	if hc.Port != nil && hc.PortIndex != nil {
		errs.add(path, msgHCPortAndIdx)
	}
	if hc.Port != nil {
		between(errs, path+"/port", float64(*hc.Port), 0, 65535, fmtInt)
	}
	if hc.Protocol != "COMMAND" && hc.PortIndex != nil && (*hc.PortIndex < 0 || *hc.PortIndex >= ports) {
		errs.add(path, msgHCPortIndex)
	}
	atLeast(errs, path+"/gracePeriodSeconds", float64(hc.GracePeriodSeconds), 0, fmtInt)
	atLeast(errs, path+"/intervalSeconds", float64(hc.IntervalSeconds), 0, fmtInt)
	atLeast(errs, path+"/timeoutSeconds", float64(hc.TimeoutSeconds), 0, fmtInt)
	atLeast(errs, path+"/maxConsecutiveFailures", float64(hc.MaxConsecutiveFailures), 0, fmtInt)
	atLeast(errs, path+"/delaySeconds", float64(hc.DelaySeconds), 0, fmtInt)
}

// constraintErrors are the scheduler's own findings on the constraints,
// the rules it will place by.
func constraintErrors(cs [][]string) []FieldErrors {
	_, bad := scheduler.ParseConstraints(cs)
	var errs fieldErrs
	for _, fe := range bad {
		errs.add(fe.Path, fe.Message)
	}
	return errs
}

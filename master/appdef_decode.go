package master

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/atollhq/atoll/events"
)

// Decoding app JSON field by field, so a wrong type is reported with its
// path as Marathon does, and absent fields stay absent (for PUT). Which
// fields there are and how each is read is the app schema's
// (appdef_schema.go); the readers are here.

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
	p := &appPatch{vals: make([]any, len(appSchema)), has: make([]bool, len(appSchema))}
	for i, e := range appSchema {
		raw, ok := obj[e.key]
		if e.read == nil || !ok || isNull(raw) {
			continue
		}
		p.vals[i], p.has[i] = e.read(r, p, "/"+e.key, raw)
	}
	for _, e := range appSchema {
		if e.settle != nil {
			e.settle(r, p)
		}
	}
	if len(r.typeErrs) > 0 {
		return nil, &InvalidJSONError{Message: msgInvalidJSON, Details: r.typeErrs}
	}
	r.refuseFields(obj)
	p.invalid = r.invalid
	return p, nil
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

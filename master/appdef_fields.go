package master

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// Honour or refuse, never drop: every top-level field of an app
// definition is one the master implements, one Marathon only ever writes
// (status it adds to an app's JSON, ignored on the way in as Marathon
// ignores it), or one it refuses with a 422 naming the field. A field
// this cluster cannot honour yet is refused unless its value asks for
// nothing (null, empty, or Marathon's default), so a client that sends
// the defaults keeps working. A field Marathon's app definition does not
// have is refused too: Marathon's server ignores it, its schema
// (AppDefinition.json, additionalProperties: false) refuses it, and a
// typo that changes nothing is worse than an error.

// fieldRule is how the master takes one top-level field.
type fieldRule int

const (
	fieldRead        fieldRule = iota // decoded and honoured (decodeAppPatch)
	fieldOutputOnly                   // status Marathon adds to an app's JSON: ignored
	fieldUnsupported                  // refused unless it asks for nothing
)

// appFieldRule is Marathon's AppDefinition, field by field (app.raml,
// AppDefinition.json; master/MARATHON_API.md §1), with why a field is
// not supported where it is not.
var appFieldRules = map[string]struct {
	rule fieldRule
	why  string
	// noop says whether a value asks for nothing beyond what the
	// master does anyway (null and empty values always do).
	noop func(json.RawMessage) bool
}{
	"id": {rule: fieldRead}, "cmd": {rule: fieldRead}, "args": {rule: fieldRead}, "user": {rule: fieldRead},
	"instances": {rule: fieldRead}, "cpus": {rule: fieldRead}, "mem": {rule: fieldRead}, "disk": {rule: fieldRead},
	"ports": {rule: fieldRead}, "portDefinitions": {rule: fieldRead}, "requirePorts": {rule: fieldRead},
	"constraints": {rule: fieldRead}, "labels": {rule: fieldRead}, "env": {rule: fieldRead},
	"healthChecks": {rule: fieldRead}, "upgradeStrategy": {rule: fieldRead}, "backoffSeconds": {rule: fieldRead},
	"backoffFactor": {rule: fieldRead}, "maxLaunchDelaySeconds": {rule: fieldRead},
	"taskKillGracePeriodSeconds": {rule: fieldRead}, "killSelection": {rule: fieldRead},
	"dependencies": {rule: fieldRead}, // groups_plan.go orders deployments by them
	// version is a rollback request (appRollback); versionInfo is set
	// by the master.
	"version": {rule: fieldRead}, "versionInfo": {rule: fieldOutputOnly},

	"tasksStaged": {rule: fieldOutputOnly}, "tasksRunning": {rule: fieldOutputOnly},
	"tasksHealthy": {rule: fieldOutputOnly}, "tasksUnhealthy": {rule: fieldOutputOnly},
	"deployments": {rule: fieldOutputOnly}, "tasks": {rule: fieldOutputOnly},
	"lastTaskFailure": {rule: fieldOutputOnly}, "taskStats": {rule: fieldOutputOnly},
	"readinessCheckResults": {rule: fieldOutputOnly},
	"waiting":               {rule: fieldOutputOnly}, // atoll's: why a deployment waits

	"container": {rule: fieldRead}, "networks": {rule: fieldRead}, // appdef_container.go
	"ipAddress": {rule: fieldUnsupported, why: "IP-per-task networking is not supported: tasks use the host's network"},
	"check":     {rule: fieldUnsupported, why: "Mesos checks are not supported: use healthChecks"},
	"fetch":     {rule: fieldRead}, "uris": {rule: fieldRead}, "readinessChecks": {rule: fieldRead}, "unreachableStrategy": {rule: fieldRead},
	"storeUrls":             {rule: fieldUnsupported, why: "there is no artifact store"},
	"acceptedResourceRoles": {rule: fieldUnsupported, why: "this cluster has no Mesos roles: every resource is unreserved (\"*\")", noop: jsonEquals(`["*"]`)},
	"role":                  {rule: fieldUnsupported, why: "this cluster has no Mesos roles: every task runs as \"*\"", noop: jsonEquals(`"*"`)},
	"residency":             {rule: fieldUnsupported, why: "resident tasks (persistent volumes) are not supported"},
	"secrets":               {rule: fieldUnsupported, why: "secret stores are not supported"},
	"executor":              {rule: fieldUnsupported, why: "custom executors are not supported: tasks run under the agent", noop: jsonEquals(`"//cmd"`)},
	"gpus":                  {rule: fieldUnsupported, why: "GPUs are not supported", noop: jsonEquals(`0`)},
	"resourceLimits":        {rule: fieldUnsupported, why: "resource limits above the request are not supported"},
	"tty":                   {rule: fieldUnsupported, why: "a TTY needs a container", noop: jsonEquals(`false`)},
}

// Messages for fields the master does not take.
const (
	msgUnsupportedField = "is not supported by atoll: "
	msgUnknownField     = "is not a field of Marathon's app definition"
)

// refuseFields notes, as 422s, the fields of obj the master cannot
// honour and the ones no app definition has.
func (r *reader) refuseFields(obj map[string]json.RawMessage) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		raw := obj[k]
		f, known := appFieldRules[k]
		switch {
		case !known:
			r.invalid.add("/"+k, msgUnknownField)
		case f.rule == fieldUnsupported && !asksNothing(raw) && (f.noop == nil || !f.noop(raw)):
			r.invalid.add("/"+k, msgUnsupportedField+f.why)
		}
	}
}

// asksNothing says whether a value is null or empty ("", [], {}).
func asksNothing(raw json.RawMessage) bool {
	switch string(bytes.TrimSpace(raw)) {
	case "null", `""`, "[]", "{}":
		return true
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch v := v.(type) {
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	case string:
		return strings.TrimSpace(v) == ""
	}
	return false
}

// jsonEquals returns a check that a value is the given JSON (spacing
// aside).
func jsonEquals(want string) func(json.RawMessage) bool {
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		panic("jsonEquals: " + err.Error())
	}
	canon, _ := json.Marshal(w)
	return func(raw json.RawMessage) bool {
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return false
		}
		got, _ := json.Marshal(v)
		return bytes.Equal(got, canon)
	}
}

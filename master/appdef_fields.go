package master

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// Honour or refuse, never drop: the app schema (appdef_schema.go) says
// which top-level fields the master implements, which Marathon only
// writes, and which it refuses and why; here the refusals are made.

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
		f, known := appPropOf(k)
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

package master

import (
	"encoding/json"
	"slices"

	"github.com/atollhq/atoll/events"
)

// The machinery of the app schema (appdef_schema.go): one appProp per
// top-level field of Marathon's app definition says how the master reads
// it, fills it in, merges it, checks it and shows it, so that a field is
// declared in one place and every step takes it from there.

// fieldRule is how the master takes one top-level field.
type fieldRule int

const (
	fieldRead        fieldRule = iota // decoded and honoured
	fieldOutputOnly                   // status Marathon adds to an app's JSON: ignored
	fieldUnsupported                  // refused unless it asks for nothing
)

// appProp is one top-level field of an app definition.
type appProp struct {
	key string
	// fields are the events.App fields the entry owns: every field of
	// an App is some entry's (TestAppSchemaCoversApp).
	fields []string
	rule   fieldRule
	// why a field is unsupported (fieldUnsupported), the 422's reason.
	why string
	// noop says whether a value of an unsupported field asks for
	// nothing beyond what the master does anyway (null and empty values
	// always do).
	noop func(json.RawMessage) bool

	// read decodes the field's JSON (present and not null); type errors
	// go to r, with their path, as 400s, and 422 findings to r.invalid.
	// ok false keeps the field absent from the patch.
	read func(r *reader, p *appPatch, path string, raw json.RawMessage) (v any, ok bool)
	// settle runs once every field is read, whether this one was given
	// or not: for what depends on other fields of the body.
	settle func(r *reader, p *appPatch)
	// given checks, as 422s, how the field was given together with
	// others (both ports and portDefinitions, fetch and uris).
	given func(errs *fieldErrs, p *appPatch)
	// def sets Marathon's default on an app that has only an id.
	def func(a *events.App)
	// apply merges the given value v onto a. PUT and PATCH treat every
	// field alike: a field given replaces the app's value as a whole; one
	// left out keeps it (a PUT with partialUpdate=false starts from
	// defaultApp instead of the existing app).
	apply func(a *events.App, v any, p *appPatch)
	// clone copies what a holds of the field that an update could share
	// with the record the state holds (slices, maps, pointers).
	clone func(a *events.App)
	// check is the field's 422 rule on the merged app.
	check func(errs *fieldErrs, a *events.App, lim appLimits)
	// api and event are how the field is shown in GET /v2/apps and in
	// Marathon's events (appDefinition); a zero output is not shown.
	api, event output
}

// prop is an entry read by read into a value of type T that, given,
// replaces the App field at get (PUT and PATCH alike).
func prop[T any](key, field string, get func(*events.App) *T, read func(*reader, string, json.RawMessage) (T, bool)) appProp {
	return appProp{
		key: key, fields: []string{field}, rule: fieldRead,
		read:  readWith(read),
		apply: func(a *events.App, v any, _ *appPatch) { *get(a) = v.(T) },
	}
}

// readWith adapts a typed reader to appProp.read.
func readWith[T any](read func(*reader, string, json.RawMessage) (T, bool)) func(*reader, *appPatch, string, json.RawMessage) (any, bool) {
	return func(r *reader, _ *appPatch, path string, raw json.RawMessage) (any, bool) {
		return read(r, path, raw)
	}
}

// merged by apply instead of replacing the field (nil: not merged).
func (e appProp) merged(apply func(a *events.App, v any, p *appPatch)) appProp {
	e.apply = apply
	return e
}

// defaults sets the field's default (defaultApp).
func (e appProp) defaults(set func(*events.App)) appProp { e.def = set; return e }

// checked by check.
func (e appProp) checked(check func(*fieldErrs, *events.App, appLimits)) appProp {
	e.check = check
	return e
}

// shownAs api in GET /v2/apps and event in Marathon's events.
func (e appProp) shownAs(api, event output) appProp { e.api, e.event = api, event; return e }

// shownAlike in GET /v2/apps and in Marathon's events.
func (e appProp) shownAlike(o output) appProp { return e.shownAs(o, o) }

// cloned by clone.
func (e appProp) cloned(clone func(*events.App)) appProp { e.clone = clone; return e }

// outputOnly is a field Marathon writes and ignores on the way in.
func outputOnly(key string, fields ...string) appProp {
	return appProp{key: key, fields: fields, rule: fieldOutputOnly}
}

// unsupported is a field the master refuses, unless its value asks for
// nothing (noop, when not nil, says which values do).
func unsupported(key, why string, noop func(json.RawMessage) bool) appProp {
	return appProp{key: key, rule: fieldUnsupported, why: why, noop: noop}
}

// appPropIndex is each entry's position in appSchema, by key. It is made
// in init: the entries' own functions look fields up by key.
var appPropIndex map[string]int

func init() {
	appPropIndex = make(map[string]int, len(appSchema))
	for i, e := range appSchema {
		if _, dup := appPropIndex[e.key]; dup {
			panic("app schema: " + e.key + " twice")
		}
		appPropIndex[e.key] = i
	}
}

// appPropOf is the entry for a top-level key.
func appPropOf(key string) (appProp, bool) {
	i, ok := appPropIndex[key]
	if !ok {
		return appProp{}, false
	}
	return appSchema[i], true
}

// appPatch is an app JSON as given: the values of the fields the body
// has (absent and null fields are not given, so a PUT keeps the existing
// value), by appSchema position. Slices and maps are fresh copies.
type appPatch struct {
	vals       []any
	has        []bool
	containers containerPatch // container, networks: appdef_container.go
	// invalid are 422 findings made while decoding (secret references in
	// env), reported together with the validation of the merged app.
	invalid []FieldErrors
}

// given says whether the body gave the field key.
func (p *appPatch) given(key string) bool {
	i, ok := appPropIndex[key]
	return ok && p.has[i]
}

// value is the given value of field key (the zero T when not given).
func value[T any](p *appPatch, key string) (T, bool) {
	i := appPropIndex[key]
	if !p.has[i] {
		var zero T
		return zero, false
	}
	return p.vals[i].(T), true
}

// applyTo merges the patch onto base and returns the result; base is not
// changed. The id is base's: callers normalize and check the patch's.
// The container and networks go last: they normalize the ports the other
// fields set (appPatch.applyContainer).
func (p *appPatch) applyTo(base events.App) events.App {
	a := base
	for i, e := range appSchema {
		if p.has[i] && e.apply != nil {
			e.apply(&a, p.vals[i], p)
		}
	}
	p.applyContainer(&a) // appdef_container.go
	return a
}

// defaultApp is Marathon's app with nothing but an id: every field at its
// default.
func defaultApp(id string) events.App {
	a := events.App{ID: id}
	for _, e := range appSchema {
		if e.def != nil {
			e.def(&a)
		}
	}
	return a
}

// cloneApp copies the app's slices and maps so a merge never writes into
// a record the state holds. Nil stays nil: the core compares old and new
// apps to tell scaling from a config change.
func cloneApp(a events.App) events.App {
	for _, e := range appSchema {
		if e.clone != nil {
			e.clone(&a)
		}
	}
	return a
}

// validateApp checks a complete app by Marathon's rules, the operator's
// limits and what an agent can run, and returns the failures per JSON
// path; none means the app may be committed. The id is checked by
// normalizeAppID, where it is read.
func validateApp(a events.App, lim appLimits) []FieldErrors {
	var errs fieldErrs
	for _, e := range appSchema {
		if e.check != nil {
			e.check(&errs, &a, lim)
		}
	}
	return errs
}

// Clone helpers for entries whose value is a plain slice or map.

func cloneSlice[T any](get func(*events.App) *[]T) func(*events.App) {
	return func(a *events.App) { *get(a) = slices.Clone(*get(a)) }
}

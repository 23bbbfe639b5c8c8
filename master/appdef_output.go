package master

import (
	"reflect"
	"slices"
	"strings"

	"github.com/atollhq/atoll/events"
)

// An app's two outputs, GET /v2/apps' view (appDefView, which appView
// completes with the app's status) and Marathon's event JSON
// (appDefinition), are structs generated from the app schema
// (appdef_output_gen.go): each field is shown as its entry's api and
// event outputs say, in appSchema's order and appEventOrder. Encoding
// stays encoding/json's, on plain structs, as fast as the hand-written
// views were.

// output shows a field: show is a func(*events.App) T, typ is T;
// omitEmpty leaves an empty value out (encoding/json's omitempty).
type output struct {
	typ       reflect.Type
	show      any
	omitEmpty bool
}

// shown says the field is shown as f computes it.
func shown[T any](f func(*events.App) T) output {
	return output{typ: reflect.TypeFor[T](), show: f}
}

// omittedEmpty is o, left out when empty.
func (o output) omittedEmpty() output { o.omitEmpty = true; return o }

// outputField is one field of a generated view.
type outputField struct {
	index       int // in appSchema
	key, goName string
	out         output
}

// outputFields are the fields a view shows, in its order: which says
// whether it is the api or the event output.
func outputFields(event bool) []outputField {
	var fields []outputField
	for i, e := range appSchema {
		o := e.api
		if event {
			o = e.event
		}
		if o.show == nil {
			continue
		}
		name := strings.ToUpper(e.key[:1]) + e.key[1:]
		if len(e.fields) == 1 {
			name = e.fields[0]
		}
		fields = append(fields, outputField{index: i, key: e.key, goName: name, out: o})
	}
	if event {
		pos := func(f outputField) int {
			if i := slices.Index(appEventOrder, f.key); i >= 0 {
				return i
			}
			return len(appEventOrder) // TestAppOutputsGenerated names it
		}
		slices.SortStableFunc(fields, func(a, b outputField) int { return pos(a) - pos(b) })
	}
	return fields
}

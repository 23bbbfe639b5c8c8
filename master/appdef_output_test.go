package master

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/atollhq/atoll/events"
)

const outputGenPath = "appdef_output_gen.go"

// appOutputSource is appdef_output_gen.go as the schema makes it.
func appOutputSource() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`// Code generated from appSchema by TestAppOutputsGenerated; DO NOT EDIT.
// go test ./master -run TestAppOutputsGenerated -update

package master

import "github.com/atollhq/atoll/events"

`)
	view := func(typ, doc, of, param, app string, event bool) {
		fields := outputFields(event)
		fmt.Fprintf(&b, "// %s\ntype %s struct {\n", doc, typ)
		for _, f := range fields {
			tag := f.key
			if f.out.omitEmpty {
				tag += ",omitempty"
			}
			fmt.Fprintf(&b, "\t%s %s `json:%q`\n", f.goName, goType(f.out.typ), tag)
		}
		fmt.Fprintf(&b, "}\n\nfunc %s(%s) %s {\n\treturn %s{\n", of, param, typ, typ)
		which := "api"
		if event {
			which = "event"
		}
		for _, f := range fields {
			fmt.Fprintf(&b, "\t\t%s: appSchema[%d].%s.show.(func(*events.App) %s)(%s),\n", f.goName, f.index, which, goType(f.out.typ), app)
		}
		b.WriteString("\t}\n}\n\n")
	}
	view("appDefView", "appDefView is an app's definition as GET /v2/apps shows it; appView adds its status.",
		"appDefViewOf", "a *events.App", "a", false)
	view("appDefinition", "appDefinition is an app as Marathon's AppDefinition JSON has it in its events.",
		"appEventViewOf", "a *events.App", "a", true)
	return format.Source(b.Bytes())
}

// goType is how the generated file names t.
func goType(t reflect.Type) string {
	if t.Kind() == reflect.Interface && t.NumMethod() == 0 {
		return "any"
	}
	return strings.ReplaceAll(t.String(), "master.", "")
}

// The generated views are the schema's: a field added to the schema is
// shown once the file is made anew (-update).
func TestAppOutputsGenerated(t *testing.T) {
	for _, f := range outputFields(true) {
		if !slices.Contains(appEventOrder, f.key) {
			t.Errorf("%s is shown in events but not in appEventOrder: place it there", f.key)
		}
	}
	want, err := appOutputSource()
	if err != nil {
		t.Fatal(err)
	}
	if *updateGolden {
		if err := os.WriteFile(outputGenPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(outputGenPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not the schema's: go test ./master -run TestAppOutputsGenerated -update", outputGenPath)
	}
}

// Every field of an app is some schema entry's, so that a new field
// cannot be forgotten: read, merged, checked and shown, or said to be
// output only.
func TestAppSchemaCoversApp(t *testing.T) {
	owner := map[string]string{}
	for _, e := range appSchema {
		for _, f := range e.fields {
			if prev, dup := owner[f]; dup {
				t.Errorf("events.App.%s is both %s's and %s's", f, prev, e.key)
			}
			owner[f] = e.key
			if _, ok := reflect.TypeFor[events.App]().FieldByName(f); !ok {
				t.Errorf("%s names events.App.%s, which does not exist", e.key, f)
			}
		}
		if e.rule == fieldRead && len(e.fields) > 0 && e.api.show == nil {
			t.Errorf("%s is read but GET /v2/apps does not show it", e.key)
		}
		if e.rule == fieldRead && e.read != nil && e.apply == nil && e.key != "id" && e.key != "container" && e.key != "networks" {
			t.Errorf("%s is read but never merged into the app", e.key)
		}
		if e.rule == fieldUnsupported && e.why == "" {
			t.Errorf("%s is refused without a reason", e.key)
		}
	}
	for f := range reflect.TypeFor[events.App]().Fields() {
		if _, ok := owner[f.Name]; !ok {
			t.Errorf("events.App.%s is in no entry of appSchema (appdef_schema.go): say how it is read, merged, checked and shown, or that it is output only", f.Name)
		}
	}
}

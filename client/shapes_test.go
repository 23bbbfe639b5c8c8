package client

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// The CLI lists apps whatever shape the master shows them in: one app
// with Marathon's "unreachableStrategy": "disabled" made GET /v2/apps
// undecodable, and `atoll app list` failed for every app. The views are
// the master's own (master/testdata/appdef/outputs.jsonl, which its
// golden test holds to its output byte for byte).
func TestAppsDecodesEveryShapeTheMasterWrites(t *testing.T) {
	f, err := os.Open("../master/testdata/appdef/outputs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var views []string
	for sc.Scan() {
		var line struct {
			API json.RawMessage `json:"api"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		if line.API != nil {
			views = append(views, string(line.API))
		}
	}
	fk := newFake(t)
	fk.handle("GET /v2/apps", 200, `{"apps":[`+strings.Join(views, ",")+`]}`)
	apps, err := New(fk.srv.URL, nil).Apps(context.Background())
	if err != nil {
		t.Fatalf("GET /v2/apps: %v", err)
	}
	if len(apps) != len(views) {
		t.Fatalf("%d apps, want %d", len(apps), len(views))
	}
	for _, a := range apps {
		if a.ID == "/unrd" && (a.UnreachableStrategy == nil || !a.UnreachableStrategy.Disabled) {
			t.Errorf("/unrd: unreachableStrategy %+v, want disabled", a.UnreachableStrategy)
		}
		if a.ID == "/br" && (a.Container == nil || a.Container.Docker == nil || a.Container.Docker.Image == "") {
			t.Errorf("/br: container %+v", a.Container)
		}
	}
}

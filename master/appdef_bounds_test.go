package master

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/atollhq/atoll/events"
)

// testLimits are the API's limits at their defaults.
var testLimits = appLimits{maxInstances: DefaultMaxInstancesPerApp}

// The longest id the API takes makes a task id an agent can name a
// sandbox folder after; one character more could not be.
func TestAppIDLengthIsWhatAgentsCanRun(t *testing.T) {
	longest := "/g/" + strings.Repeat("a", maxAppIDLen-len("/g/"))
	tooLong := longest + "a"
	if _, err := appForCreate([]byte(`{"id":"`+longest+`","cmd":"a b"}`), testLimits); err != nil {
		t.Fatalf("id of %d characters: %v", len(longest), err)
	}
	_, err := appForCreate([]byte(`{"id":"`+tooLong+`","cmd":"a b"}`), testLimits)
	wantDetail(t, err, 422, "/id", fmt.Sprintf("is %d characters long, expected at most %d", len(tooLong), maxAppIDLen))

	dir := t.TempDir()
	if id := taskID(longest); len(id) != maxFileNameBytes {
		t.Fatalf("task id of the longest app id is %d bytes, want %d", len(id), maxFileNameBytes)
	}
	if err := os.Mkdir(filepath.Join(dir, taskID(longest)), 0o700); err != nil {
		t.Fatalf("sandbox folder for the longest app id: %v", err)
	}
	err = os.Mkdir(filepath.Join(dir, taskID(tooLong)), 0o700)
	if !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Fatalf("sandbox folder for an id one longer: %v, want ENAMETOOLONG (else the limit is not the file system's)", err)
	}
}

// Bounds that hold at the limit, and env names Marathon takes for apps.
func TestBoundsAcceptWhatRuns(t *testing.T) {
	for _, tt := range []struct{ name, body string }{
		{"instances at the limit", `{"id":"x","cmd":"a b","instances":1000}`},
		{"id at the limit", `{"id":"/` + strings.Repeat("a", maxAppIDLen-1) + `","cmd":"a b"}`},
		{"env names Marathon's apps take", `{"id":"x","cmd":"a b","env":{"my-var":"1","9LIVES":"2","_":"3","a b":"4"}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := appForCreate([]byte(tt.body), testLimits); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// --max-instances-per-app: the API holds creation and every way of scaling
// to it, with the limit in the message.
func TestMaxInstancesPerApp(t *testing.T) {
	m, h := newAPI(t, "")
	m.cfg.MaxInstancesPerApp = 3
	if res := call(t, h, "POST", "/v2/apps", `{"id":"web","cmd":"sleep 1000","instances":3}`); res.status != http.StatusCreated {
		t.Fatalf("create at the limit: %d %s", res.status, res.body)
	}
	for _, tt := range []struct{ method, target, body string }{
		{"POST", "/v2/apps", `{"id":"big","cmd":"sleep 1000","instances":4}`},
		{"PUT", "/v2/apps/web?force=true", `{"instances":4}`},
		{"PUT", "/v2/apps/web?force=true&partialUpdate=false", `{"cmd":"sleep 1000","instances":4}`},
		{"PUT", "/v2/apps/new", `{"cmd":"sleep 1000","instances":4}`},
	} {
		s0 := seq(m)
		res := call(t, h, tt.method, tt.target, tt.body)
		if res.status != http.StatusUnprocessableEntity {
			t.Fatalf("%s %s %s: %d %s, want 422", tt.method, tt.target, tt.body, res.status, res.body)
		}
		if d := at(t, res.json(t), "details", 0); at(t, d, "path") != "/instances" ||
			!strings.Contains(at(t, d, "errors", 0).(string), "got 4, expected 3 or less") {
			t.Errorf("%s %s: detail %v", tt.method, tt.target, d)
		}
		if seq(m) != s0 {
			t.Errorf("%s %s changed the state", tt.method, tt.target)
		}
	}
	var n int
	m.View(func(s *events.State) { n = s.Apps["/web"].Instances })
	if n != 3 {
		t.Errorf("web has %d instances, want 3", n)
	}
}

func TestConfigRefusesNegativeMaxInstances(t *testing.T) {
	m := newUnestablished(t, "")
	cfg := m.cfg
	cfg.MaxInstancesPerApp = -1
	if _, err := New(cfg); err == nil {
		t.Fatal("New with MaxInstancesPerApp -1: no error")
	}
}

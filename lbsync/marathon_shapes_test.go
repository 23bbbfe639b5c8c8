package lbsync

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
)

// masterAppViews are the /v2/apps views the atoll master writes, every
// shape it has (master/testdata/appdef/outputs.jsonl, which the master's
// golden test holds to its output byte for byte).
func masterAppViews(t *testing.T) (ids []string, views [][]byte) {
	t.Helper()
	f, err := os.Open("../master/testdata/appdef/outputs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			API json.RawMessage `json:"api"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		if line.API == nil {
			continue // an update or an error, not an output
		}
		var id struct{ ID string }
		_ = json.Unmarshal(line.API, &id)
		ids, views = append(ids, id.ID), append(views, []byte(line.API))
	}
	if len(views) == 0 {
		t.Fatal("no app views in the golden file")
	}
	return ids, views
}

// One app the master shows in a shape the sidecar's structs did not
// expect (Marathon's "unreachableStrategy": "disabled") must not make
// the whole of /v2/apps undecodable: the load balancer would keep a stale
// configuration for every app.
func TestMarathonSourceDecodesEveryShapeTheMasterWrites(t *testing.T) {
	ids, views := masterAppViews(t)
	body := []byte(`{"apps":[` + string(bytes.Join(views, []byte(","))) + `]}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer srv.Close()
	base, _ := url.Parse(srv.URL)
	st, err := fetchMarathonState(context.Background(), srv.Client(), base)
	if err != nil {
		t.Fatalf("decoding the master's /v2/apps: %v", err)
	}
	for _, id := range ids { // /unrd's unreachableStrategy is "disabled"
		if _, ok := st.Apps[id]; !ok {
			t.Errorf("app %s missing", id)
		}
	}
	if br := st.Apps["/br"]; !br.Bridged() || br.Container == nil || len(br.Container.PortMappings) != 2 ||
		br.Container.PortMappings[0].ServicePort != 10030 {
		t.Errorf("/br: %+v %+v", br.Networks, br.Container)
	}
}

// What Marathon itself writes and atoll's master does not (secret
// references in env, fields of later versions) leaves the apps around it
// decodable too: only what the load balancer renders is read.
func TestMarathonSourceReadsWhatItRenders(t *testing.T) {
	var body struct {
		Apps []marathonApp `json:"apps"`
	}
	err := json.Unmarshal([]byte(`{"apps":[{"id":"/db","cmd":"x","env":{"PASSWORD":{"secret":"pw"}},
		"secrets":{"pw":{"source":"/db/pw"}},"unreachableStrategy":"disabled","residency":{"taskLostBehavior":"WAIT_FOREVER"},
		"labels":{"HAPROXY_GROUP":"external"},"portDefinitions":[{"port":10300,"protocol":"tcp"}],
		"tasks":[{"id":"db.1","host":"127.0.10.8","state":"TASK_RUNNING","ports":[31010]}]}]}`), &body)
	if err != nil {
		t.Fatalf("a Marathon app with secrets: %v", err)
	}
	r := mustRender(t, nil, StateFromMarathon(body.Apps), Config{})
	if !strings.Contains(r.Config, "bind *:10300") || !strings.Contains(r.Config, "127.0.10.8:31010") {
		t.Fatalf("config lacks the app's service port or its task:\n%s", r.Config)
	}
}

package master

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events/eventstest"
)

func TestUIServesEmbeddedFiles(t *testing.T) {
	mux := http.NewServeMux()
	registerUI(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := noRedirect.Get(srv.URL + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("/ui: %d Location %q, want a redirect to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}

	for _, c := range []struct{ path, ctype, contains string }{
		{"/ui/", "text/html", `<script type="module" src="app.js">`},
		{"/ui/app.js", "javascript", "new EventSource('/v2/events')"},
		{"/ui/style.css", "text/css", "--bad"},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", c.path, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, c.ctype) {
			t.Errorf("%s: Content-Type %q, want %s", c.path, ct, c.ctype)
		}
		if !strings.Contains(string(body), c.contains) {
			t.Errorf("%s: body lacks %q", c.path, c.contains)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: no Content-Security-Policy", c.path)
		}
	}

	resp, err = http.Get(srv.URL + "/ui/nope.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/ui/nope.js: status %d, want 404", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ui/", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: status %d, want 405", resp.StatusCode)
	}
}

// The UI's agents table shows when each agent was last heard from:
// /master/state's last_heartbeat (atoll's own field).
func TestUIAgentsLastHeartbeat(t *testing.T) {
	m, h, agent := withTasks(t)
	slave := func() map[string]any {
		return at(t, call(t, h, "GET", "/master/state", "").json(t), "slaves", 0).(map[string]any)
	}
	if hb := slave()["last_heartbeat"]; hb != 0.0 {
		t.Fatalf("last_heartbeat %v before any heartbeat, want 0", hb)
	}
	seen := eventstest.T0.Add(5 * time.Second)
	m.live.heardFrom(agent.ID, nodeOf(m, agent.ID), seen)
	if hb := slave()["last_heartbeat"]; hb != float64(seen.UnixNano())/1e9 {
		t.Fatalf("last_heartbeat %v, want %v", hb, float64(seen.UnixNano())/1e9)
	}
}

// The master's API handler serves the UI; with credentials configured the
// UI asks for them first (in the API's realm, so that the browser answers
// the API's challenges from its cache), since all it shows comes from
// reads that need them.
func TestUIOnTheMasterHandler(t *testing.T) {
	_, h := newAPI(t, "admin:secret")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/", nil))
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != `Basic realm="Mesosphere"` {
		t.Fatalf("GET /ui/ without credentials: %d %v", rec.Code, rec.Header())
	}
	rec = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/ui/", nil)
	req.SetBasicAuth("admin", "secret")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `<script type="module" src="app.js">`) {
		t.Fatalf("GET /ui/: %d %.200s", rec.Code, rec.Body.String())
	}
}

package dnsserver

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// httpTestLeader leads a small cluster: two agents, app /web/nginx (task
// name nginx.web) with two running tasks of two ports each, and one
// staging task, which DNS must not show.
func httpTestLeader() *eventstest.Leader {
	l := eventstest.NewLeader()
	for i, ip := range []string{"10.1.0.1", "10.1.0.2"} {
		a := eventstest.Agent([]string{"agent-a", "agent-b"}[i])
		a.IP = ip
		l.Commit(events.PutAgent(a))
	}
	app := eventstest.App("/web/nginx", 2)
	app.PortDefinitions = []events.PortDefinition{{Port: 10000, Protocol: "tcp"}, {Port: 10001, Protocol: "tcp"}}
	l.Commit(events.PutApp(app))
	for i, agent := range []string{"agent-a", "agent-b"} {
		t := eventstest.Task([]string{"web_nginx.1", "web_nginx.2"}[i], "/web/nginx", agent, events.TaskRunning)
		t.IPAddresses = []events.IPAddress{{IPAddress: []string{"10.1.0.1", "10.1.0.2"}[i], Protocol: "IPv4"}}
		t.Ports = []int{31000 + i*10, 31001 + i*10}
		l.Commit(events.PutTask(t))
	}
	staging := eventstest.Task("web_nginx.3", "/web/nginx", "agent-a", events.TaskStaging)
	l.Commit(events.PutTask(staging))
	return l
}

type httpFixture struct {
	srv  *httptest.Server
	zone *Zone
}

func newHTTPFixture(t *testing.T, zone *Zone) *httpFixture {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:8053", Resolvers: []string{"192.0.2.53:53"}}
	f := &httpFixture{zone: zone}
	f.srv = httptest.NewServer(NewHTTPHandler(cfg, func() *Zone { return f.zone }, NewMetrics(), "1.2.3"))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *httpFixture) get(t *testing.T, path string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// getJSON gets path, checks the status and decodes the body into v.
func (f *httpFixture) getJSON(t *testing.T, path string, code int, v any) {
	t.Helper()
	got, h, body := f.get(t, path)
	if got != code {
		t.Fatalf("GET %s: status %d, want %d: %s", path, got, code, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

func httpTestZone() *Zone {
	return BuildZone(httpTestLeader().State(), Config{Addr: "127.0.0.1:8053"}.withDefaults())
}

func TestHTTPBeforeFirstSnapshot(t *testing.T) {
	f := newHTTPFixture(t, nil)
	for _, path := range []string{"/v1/hosts/nginx.web.marathon.mesos", "/v1/services/_nginx.web._tcp.marathon.mesos", "/v1/enumerate", "/v1/axfr", "/v1/axfr?format=zone"} {
		var body struct{ Message string }
		f.getJSON(t, path, http.StatusServiceUnavailable, &body)
		if body.Message == "" {
			t.Errorf("%s: 503 without a message", path)
		}
	}
	// What needs no zone still answers.
	for _, path := range []string{"/v1/version", "/v1/config", "/metrics"} {
		if code, _, body := f.get(t, path); code != 200 {
			t.Errorf("%s before the first snapshot: %d %s", path, code, body)
		}
	}
}

func TestHTTPVersion(t *testing.T) {
	f := newHTTPFixture(t, httpTestZone())
	_, _, body := f.get(t, "/v1/version")
	// Mesos-DNS's shape, key for key.
	if want := `{"Service":"atoll-dns","URL":"https://github.com/atollhq/atoll","Version":"1.2.3"}` + "\n"; body != want {
		t.Fatalf("/v1/version = %s, want %s", body, want)
	}
}

func TestHTTPConfigIsEffectiveAndComplete(t *testing.T) {
	f := newHTTPFixture(t, httpTestZone())
	var got map[string]any
	f.getJSON(t, "/v1/config", 200, &got)
	want := map[string]any{
		"Addr": "127.0.0.1:8053", "Domain": "mesos", "Framework": "marathon", "TTL": 5.0,
		"Resolvers": []any{"192.0.2.53:53"}, "ForwardTimeout": "2s",
	}
	for k, v := range want {
		if gj, _ := json.Marshal(got[k]); string(gj) != mustJSON(v) {
			t.Errorf("%s = %s, want %s", k, gj, mustJSON(v))
		}
	}
	if cidrs, _ := got["RecursionCIDRs"].([]any); len(cidrs) != len(DefaultRecursionCIDRs()) {
		t.Errorf("RecursionCIDRs = %v, want the defaults", got["RecursionCIDRs"])
	}
	if n, _ := got["UDPSockets"].(float64); n < 1 {
		t.Errorf("UDPSockets = %v, want the effective count", got["UDPSockets"])
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"Addr", "Domain", "ForwardTimeout", "Framework", "RecursionCIDRs", "Resolvers", "TTL", "UDPSockets"}; !slices.Equal(keys, want) {
		t.Errorf("config keys %v, want exactly %v", keys, want)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestHTTPHosts(t *testing.T) {
	f := newHTTPFixture(t, httpTestZone())
	for _, path := range []string{
		"/v1/hosts/nginx.web.marathon.mesos",
		"/v1/hosts/nginx.web.marathon.mesos.",
		"/v1/hosts/NGINX.Web.Marathon.MESOS",
	} {
		var got []hostRecord
		f.getJSON(t, path, 200, &got)
		want := []hostRecord{{"nginx.web.marathon.mesos.", "10.1.0.1"}, {"nginx.web.marathon.mesos.", "10.1.0.2"}}
		sort.Slice(got, func(i, j int) bool { return got[i].IP < got[j].IP })
		if !slices.Equal(got, want) {
			t.Errorf("GET %s = %v, want %v", path, got, want)
		}
	}
	for _, tc := range []struct {
		path string
		code int
		msg  string
	}{
		{"/v1/hosts/nope.marathon.mesos", 404, "no such name"},
		{"/v1/hosts/_nginx.web._tcp.marathon.mesos", 404, "no A or AAAA"},
		{"/v1/hosts/example.com", 404, "not in the domain"},
		{"/v1/hosts/a..b", 400, "not a valid domain name"},
	} {
		var body struct{ Message string }
		f.getJSON(t, tc.path, tc.code, &body)
		if !strings.Contains(body.Message, tc.msg) {
			t.Errorf("GET %s: message %q, want it to say %q", tc.path, body.Message, tc.msg)
		}
	}
}

func TestHTTPServices(t *testing.T) {
	f := newHTTPFixture(t, httpTestZone())
	var got []serviceRecord
	f.getJSON(t, "/v1/services/_NGINX.web._tcp.marathon.mesos", 200, &got)
	var pairs []string
	for _, s := range got {
		// As Mesos-DNS: the service as asked, the target as a canonical
		// task name.
		if s.Service != "_NGINX.web._tcp.marathon.mesos" || !strings.HasPrefix(s.Host, "nginx.web-") || !strings.HasSuffix(s.Host, ".marathon.mesos.") {
			t.Errorf("row %+v: want service _NGINX.web._tcp.marathon.mesos and a canonical task name as host", s)
		}
		pairs = append(pairs, s.IP+":"+s.Port)
	}
	sort.Strings(pairs)
	want := []string{"10.1.0.1:31000", "10.1.0.1:31001", "10.1.0.2:31010", "10.1.0.2:31011"}
	if !slices.Equal(pairs, want) {
		t.Fatalf("services give %v, want %v", pairs, want)
	}
	var body struct{ Message string }
	f.getJSON(t, "/v1/services/_nope._tcp.marathon.mesos", 404, &body)
	f.getJSON(t, "/v1/services/nginx.web.marathon.mesos", 404, &body)
	if !strings.Contains(body.Message, "no SRV") {
		t.Errorf("A-only name: message %q", body.Message)
	}
}

func TestHTTPUnknownRoute(t *testing.T) {
	f := newHTTPFixture(t, httpTestZone())
	var body struct{ Message string }
	f.getJSON(t, "/v1/nothing", 404, &body)
	if body.Message == "" {
		t.Fatal("404 without a message")
	}
}

func TestHTTPMetrics(t *testing.T) {
	f := newHTTPFixture(t, httpTestZone())
	code, _, body := f.get(t, "/metrics")
	if code != 200 || !strings.Contains(body, "atoll_dns_") {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
}

// httpTestRRs parses zone-file text back into records.
func httpTestRRs(t *testing.T, text string) []dns.RR {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), "", "")
	var out []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out = append(out, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("zone text does not parse: %v\n%s", err, text)
	}
	return out
}

func TestHTTPEnumerate(t *testing.T) {
	f := newHTTPFixture(t, httpTestZone())
	var got enumData
	f.getJSON(t, "/v1/enumerate", 200, &got)
	// One entry per serving task, as Mesos-DNS: the staging task has none.
	if len(got.Frameworks) != 1 || got.Frameworks[0].Name != "marathon" || len(got.Frameworks[0].Tasks) != 2 {
		t.Fatalf("enumerate: %+v, want framework marathon with two tasks", got)
	}
	seen := map[string]string{} // record -> task
	for i, task := range got.Frameworks[0].Tasks {
		id, ip := []string{"web_nginx.1", "web_nginx.2"}[i], []string{"10.1.0.1", "10.1.0.2"}[i]
		canon := []string{"-myxei-a", "-kixni-b"}[i]
		if task.ID != id || task.Name != "nginx.web" {
			t.Errorf("entry %d: %s %s, want %s nginx.web", i, task.ID, task.Name, id)
		}
		var recs []string
		for _, r := range task.Records {
			rec := r.Rtype + " " + r.Name + " " + r.Host
			if other, dup := seen[rec]; dup {
				t.Errorf("%s listed under %s and %s", rec, other, id)
			}
			seen[rec] = id
			recs = append(recs, rec)
		}
		// Per name (nginx.web and nginx-web): 4 A records (the name and
		// the canonical one, in both families) and 6 SRV (2 ports in the
		// framework's _tcp, 2 x 2 in the slave family's _tcp and _udp).
		if len(recs) != 20 {
			t.Errorf("%s: %d records, want 20: %v", id, len(recs), recs)
		}
		for _, want := range []string{
			"A nginx.web.marathon.mesos. " + ip,
			"A nginx-web.marathon.mesos. " + ip,
			"A nginx-web.marathon.slave.mesos. " + ip,
			"A nginx-web" + canon + ".marathon.mesos. " + ip,
			"A nginx.web" + canon + ".marathon.slave.mesos. " + ip,
			"SRV _nginx.web._tcp.marathon.mesos. nginx.web" + canon + ".marathon.mesos.:" + strconv.Itoa(31001+10*i),
			"SRV _nginx-web._udp.marathon.slave.mesos. nginx-web" + canon + ".marathon.slave.mesos.:" + strconv.Itoa(31000+10*i),
		} {
			if !slices.Contains(recs, want) {
				t.Errorf("%s lacks %q: %v", id, want, recs)
			}
		}
	}
}

func TestHTTPAXFRJSON(t *testing.T) {
	z := httpTestZone()
	f := newHTTPFixture(t, z)
	var got axfrJSON
	f.getJSON(t, "/v1/axfr", 200, &got)
	if got.Domain != "mesos" || got.TTL != 5 || got.Serial != z.SOA().Serial || got.Mname != "ns1.mesos." || got.Rname != z.SOA().Mbox {
		t.Errorf("axfr header %+v", got)
	}
	if a := got.Records.As["nginx.web.marathon.mesos."]; !slices.Equal(a, []string{"10.1.0.1", "10.1.0.2"}) {
		t.Errorf("As[nginx.web.marathon.mesos.] = %v", a)
	}
	if srv := got.Records.SRVs["_nginx.web._tcp.marathon.mesos."]; len(srv) != 4 || !slices.Contains(srv, "nginx.web-myxei-a.marathon.mesos.:31000") {
		t.Errorf("SRVs[_nginx.web._tcp.marathon.mesos.] = %v", srv)
	}
	if ptr := got.Records.PTRs["1.0.1.10.in-addr.arpa."]; !slices.Equal(ptr, []string{"agent-a.test.slave.mesos."}) {
		t.Errorf("PTRs[1.0.1.10.in-addr.arpa.] = %v", ptr)
	}
}

// The zone-file export holds exactly the domain's records, SOA first, in
// text any RFC 1035 parser reads back.
func TestHTTPAXFRZoneFile(t *testing.T) {
	z := httpTestZone()
	f := newHTTPFixture(t, z)
	code, h, body := f.get(t, "/v1/axfr?format=zone")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, Content-Type %q", code, h.Get("Content-Type"))
	}
	got := httpTestRRs(t, body)
	var want []dns.RR
	for _, rr := range z.Records() {
		if dns.IsSubDomain("mesos.", rr.Header().Name) {
			want = append(want, rr)
		}
	}
	if len(got) != len(want) || len(got) < 10 {
		t.Fatalf("%d records read back, want %d\n%s", len(got), len(want), body)
	}
	if _, ok := got[0].(*dns.SOA); !ok {
		t.Errorf("first record %s, want the SOA", got[0])
	}
	for i := range want {
		if !dns.IsDuplicate(got[i], want[i]) || got[i].Header().Ttl != want[i].Header().Ttl {
			t.Errorf("record %d: %s, want %s", i, got[i], want[i])
		}
	}
	if strings.Contains(body, "in-addr.arpa") {
		t.Error("reverse records in the domain's zone file")
	}
	var bad struct{ Message string }
	f.getJSON(t, "/v1/axfr?format=xml", 400, &bad)
}

// The API has no credentials, so profiles (which show the cluster's names
// and cost CPU) are served only when the operator asks for them.
func TestProfilesOnlyWhenAsked(t *testing.T) {
	h := NewHTTPHandler(Config{Addr: "127.0.0.1:8053"}, func() *Zone { return nil }, NewMetrics(), "1")
	for _, tc := range []struct {
		h    http.Handler
		want int
	}{{h, http.StatusNotFound}, {withProfiling(h), http.StatusOK}} {
		srv := httptest.NewServer(tc.h)
		resp, err := http.Get(srv.URL + "/debug/pprof/heap?gc=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET /debug/pprof/heap: %d, want %d", resp.StatusCode, tc.want)
		}
	}
}

package master

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"

	mclient "github.com/atollhq/atoll/client"
	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/testca"
)

// runTLSMaster runs a master (Run, as `atoll master` does) serving HTTPS
// with a certificate of ca, and waits for its /ping. It returns the
// master and its URL.
func runTLSMaster(t *testing.T, ca *testca.CA, creds string) (*Master, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := runMasterWith(t, Config{Listener: ln, TLS: ca.ServerConfig(t, "127.0.0.1"),
		HTTPCredentials: creds, ID: "leader", Hostname: "leader.test"})
	client := tlsClient(ca)
	url := "https://" + ln.Addr().String()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(url + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && m.Leading() {
				return m, url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/ping not answering: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tlsClient trusts ca only and shows redirects rather than following them.
func tlsClient(ca *testca.CA) *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: ca.ClientConfig()},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// The API over HTTPS: the leader serves it from Run, a standby forwards to
// it over HTTPS after verifying it with the cluster's CA (and refuses to
// with the system's roots only), and names it https:// in
// X-Marathon-Leader and redirects.
func TestHTTPSLeaderAndStandby(t *testing.T) {
	ca := testca.New(t)
	leader, leaderURL := runTLSMaster(t, ca, "admin:s3cret")
	client := tlsClient(ca)
	auth := basicAuth("admin", "s3cret")
	if res, err := sendVia(client, "GET", leaderURL+"/ping", ""); err != nil || res.header.Get(headerLeader) != leaderURL {
		t.Fatalf("the leader names itself: %v %v", err, res.header)
	}

	// Plain HTTP on the HTTPS port gets nowhere.
	plain := strings.Replace(leaderURL, "https:", "http:", 1)
	if resp, err := http.Get(plain + "/v2/apps"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("plain HTTP answered 200: %s", body)
		}
	}
	// A client that does not trust the CA stops at the handshake.
	if _, err := http.Get(leaderURL + "/ping"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without the CA: %v", err)
	}

	ns := eventstest.StartNATS(t)
	// On another address, as on another machine: net/http then drops
	// the credentials on a redirect to the leader.
	standby := serveMasterWith(t, ns, Config{ID: "standby", HTTPCredentials: "admin:s3cret", HTTPAddr: "127.0.0.2:0",
		TLS: ca.ServerConfig(t, "127.0.0.2"), PeerTLS: ca.ClientConfig()}, false)
	follow(standby.m, leader.selfInfo())

	res, err := sendVia(client, "POST", standby.url+"/v2/apps", secretApp, "Authorization", auth)
	if err != nil || res.status != http.StatusCreated || res.header.Get(headerLeader) != leaderURL {
		t.Fatalf("create through the standby: %v %d %v %s", err, res.status, res.header, res.body)
	}
	if !leader.Leading() || seq(leader) < 2 {
		t.Fatalf("the leader did not take the app (seq %d)", seq(leader))
	}
	res, err = sendVia(client, "GET", standby.url+"/v2/events", "", "Authorization", auth)
	if err != nil || res.status != http.StatusFound || res.header.Get("Location") != leaderURL+"/v2/events" {
		t.Fatalf("events on the standby: %v %d %v", err, res.status, res.header)
	}
	res, err = sendVia(client, "GET", standby.url+"/master/state", "", "Authorization", auth)
	if err != nil || res.status != http.StatusTemporaryRedirect || res.header.Get("Location") != leaderURL+"/master/state" {
		t.Fatalf("/master/state on the standby: %v %d %v", err, res.status, res.header)
	}
	res, err = sendVia(client, "GET", leaderURL+"/master/state", "", "Authorization", auth)
	if err != nil || !strings.Contains(string(res.body), `"webui_url":"`+leaderURL+`"`) {
		t.Errorf("/master/state names the framework's UI: %v %s", err, res.body)
	}

	// A client that follows the redirect to the leader: Go drops the
	// credentials on the way unless client.FollowLeader puts them back.
	for _, c := range []struct {
		name   string
		check  func(*http.Request, []*http.Request) error
		status int
	}{{"net/http's default", nil, http.StatusUnauthorized}, {"client.FollowLeader", mclient.FollowLeader, http.StatusOK}} {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientConfig()}, CheckRedirect: c.check}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", standby.url+"/v2/events", nil)
		req.SetBasicAuth("admin", "s3cret")
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode != c.status || resp.Request.URL.String() != leaderURL+"/v2/events" {
			t.Errorf("events through the standby with %s: %v %v", c.name, err, resp)
		} else {
			resp.Body.Close()
		}
		cancel()
	}

	// A standby that does not know the cluster's CA will not talk to
	// the leader.
	blind := serveMasterWith(t, ns, Config{ID: "blind", HTTPCredentials: "admin:s3cret",
		TLS: ca.ServerConfig(t, "127.0.0.1")}, false)
	follow(blind.m, leader.selfInfo())
	s0 := seq(leader)
	res, err = sendVia(client, "POST", blind.url+"/v2/apps", strings.Replace(secretApp, "/db", "/db2", 1), "Authorization", auth)
	if err != nil || res.status != http.StatusBadGateway || res.json(t)["message"] != msgBadConn || seq(leader) != s0 {
		t.Fatalf("forward without the CA: %v %d %s", err, res.status, res.body)
	}
}

// A real Marathon client (go-marathon) reads and writes over HTTPS with the
// credentials, and is refused without them.
func TestMarathonClientWithCredentialsOverHTTPS(t *testing.T) {
	ca := testca.New(t)
	m, url := runTLSMaster(t, ca, "admin:s3cret")
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: ca.ClientConfig()}}

	c, err := marathon.NewClient(marathon.Config{URL: url, HTTPClient: hc,
		HTTPBasicAuthUser: "admin", HTTPBasicPassword: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	app := marathon.NewDockerApplication().Name("/gm/web").Command("sleep 1000").CPU(0.1).Memory(16).Count(0)
	app.Container = nil
	app.AddEnv("API_KEY", "k3y")
	if _, err := c.CreateApplication(app); err != nil {
		t.Fatalf("create with go-marathon: %v", err)
	}
	apps, err := c.Applications(nil)
	if err != nil {
		t.Fatalf("list with go-marathon: %v", err)
	}
	if len(apps.Apps) != 1 || apps.Apps[0].ID != "/gm/web" || apps.Apps[0].Env == nil || (*apps.Apps[0].Env)["API_KEY"] != "k3y" {
		t.Fatalf("apps: %+v", apps.Apps)
	}

	anon, err := marathon.NewClient(marathon.Config{URL: url, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	var apiErr *marathon.APIError
	if _, err := anon.Applications(nil); !errors.As(err, &apiErr) || apiErr.ErrCode != marathon.ErrCodeUnauthorized {
		t.Fatalf("list without credentials: %v", err)
	}
	if _, err := anon.CreateApplication(marathon.NewDockerApplication().Name("/gm/x").Command("true").Count(0)); !errors.As(err, &apiErr) || apiErr.ErrCode != marathon.ErrCodeUnauthorized {
		t.Fatalf("create without credentials: %v", err)
	}
	m.View(func(s *events.State) {
		if _, ok := s.Apps["/gm/x"]; ok || len(s.Apps) != 1 {
			t.Errorf("apps after a refused create: %v", s.Apps)
		}
	})
}

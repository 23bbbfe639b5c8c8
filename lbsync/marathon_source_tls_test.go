package lbsync

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/testca"
	"github.com/atollhq/atoll/master"
)

// `atoll lb --sse https://user:pass@master --sse-ca-cert CA` against a real
// master serving HTTPS with credentials: the source verifies the master
// with the CA, sends the URL's credentials on the stream and the
// refetches, and follows the apps it changes.
func TestMarathonSourceHTTPSWithCredentials(t *testing.T) {
	ca := testca.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := master.New(master.Config{
		NC: eventstest.Connect(t, eventstest.StartNATS(t)), Store: &master.MemStore{}, Listener: ln,
		TLS: ca.ServerConfig(t, "127.0.0.1"), HTTPCredentials: "lb:s3cret",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mdone := make(chan error, 1)
	go func() { mdone <- m.Run(ctx) }()
	defer func() { cancel(); <-mdone }()
	base := "https://" + ln.Addr().String()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: ca.ClientConfig()}}
	post := func(app string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			req, _ := http.NewRequest("POST", base+"/v2/apps", strings.NewReader(app))
			req.Header.Set("Content-Type", "application/json")
			req.SetBasicAuth("lb", "s3cret")
			resp, err := hc.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("POST %s: %v %v", app, err, resp)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	post(`{"id":"/web","cmd":"sleep 1000","instances":0,"cpus":0.1,"mem":16,"labels":{"HAPROXY_GROUP":"external"}}`)

	run := func(url string, tlsCA bool) (states chan *events.State, logs *syncBuffer, stop func() error) {
		states = make(chan *events.State, 100)
		logs = &syncBuffer{}
		src := &MarathonSource{URL: url, MinInterval: 20 * time.Millisecond, Log: slog.New(slog.NewTextHandler(logs, nil))}
		if tlsCA {
			src.TLS = ca.ClientConfig()
		}
		sctx, scancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- src.Run(sctx, func(s *events.State) { states <- s }) }()
		return states, logs, func() error { scancel(); return <-done }
	}
	wait := func(states chan *events.State, what string, ok func(*events.State) bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case s := <-states:
				if ok(s) {
					return
				}
			case <-deadline:
				t.Fatalf("no state with %s", what)
			}
		}
	}

	withCreds := strings.Replace(base, "https://", "https://lb:s3cret@", 1)
	states, _, stop := run(withCreds, true)
	wait(states, "/web", func(s *events.State) bool { _, ok := s.Apps["/web"]; return ok })
	post(`{"id":"/api","cmd":"sleep 1000","instances":0,"cpus":0.1,"mem":16}`)
	wait(states, "/api, after its event", func(s *events.State) bool { _, ok := s.Apps["/api"]; return ok })
	if err := stop(); err != nil {
		t.Errorf("run: %v", err)
	}

	// Without the CA, or without credentials, it gets no state.
	for _, c := range []struct {
		url  string
		ca   bool
		want string
	}{{withCreds, false, "certificate"}, {base, true, "Unauthorized"}} {
		states, logs, stop := run(c.url, c.ca)
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(logs.String(), c.want) && time.Now().Before(deadline) {
			select {
			case s := <-states:
				t.Fatalf("%s (CA %v): got a state: %v", c.url, c.ca, s.Apps)
			case <-time.After(20 * time.Millisecond):
			}
		}
		stop()
		if !strings.Contains(logs.String(), c.want) {
			t.Errorf("%s (CA %v): log without %q: %s", c.url, c.ca, c.want, logs.String())
		}
		if strings.Contains(logs.String(), "s3cret") {
			t.Errorf("the log shows the password: %s", logs.String())
		}
	}
}

package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/client"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/atollhq/atoll/internal/testca"
	"github.com/atollhq/atoll/master"
)

// runHTTPSMaster runs a real master serving HTTPS with a certificate of a
// fresh CA and credentials; it returns its URL and the CA file.
func runHTTPSMaster(t *testing.T, creds string) (url, caFile string) {
	t.Helper()
	ca := testca.New(t)
	caFile, _, _ = ca.WriteFiles(t, t.TempDir(), "127.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := master.New(master.Config{
		NC: eventstest.Connect(t, eventstest.StartNATS(t)), Store: &master.MemStore{}, Listener: ln,
		TLS: ca.ServerConfig(t, "127.0.0.1"), HTTPCredentials: creds,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	url = "https://" + ln.Addr().String()
	c := client.New(url, (&cliFlags{caCert: caFile}).httpClient(5*time.Second))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Leader(ctx); err == nil || client.StatusOf(err) == 401 {
			return url, caFile
		} else if time.Now().After(deadline) {
			t.Fatalf("master at %s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The CLI reaches an HTTPS master with the cluster's CA (--ca-cert or
// $ATOLL_CA_CERT) and credentials (in the URL or $ATOLL_HTTP_CREDENTIALS),
// and says what is missing when it has not.
func TestCLIOverHTTPSWithCredentials(t *testing.T) {
	url, caFile := runHTTPSMaster(t, "ops:s3cret")
	t.Setenv("ATOLL_MASTER", url)
	t.Setenv("ATOLL_CA_CERT", "")
	t.Setenv(envHTTPCredentials, "")

	code, _, errs := runCLI(t, runApp, "list")
	if code != 1 || !strings.Contains(errs, "--ca-cert") {
		t.Errorf("without the CA: exit %d %q", code, errs)
	}
	code, _, errs = runCLI(t, runApp, "list", "--ca-cert", caFile)
	if code != 1 || !strings.Contains(errs, "(HTTP 401)") || !strings.Contains(errs, envHTTPCredentials) {
		t.Errorf("without credentials: exit %d %q", code, errs)
	}
	code, _, errs = runCLI(t, runApp, "list", "--ca-cert", caFile+".missing")
	if code != 1 || !strings.Contains(errs, "--ca-cert: tls: CA file") {
		t.Errorf("a missing CA file: exit %d %q", code, errs)
	}

	t.Setenv("ATOLL_CA_CERT", caFile)
	t.Setenv(envHTTPCredentials, "ops:s3cret")
	app := `{"id":"/cli/web","cmd":"sleep 1000","instances":0,"cpus":0.1,"mem":16}`
	old := cliStdin
	cliStdin = strings.NewReader(app)
	defer func() { cliStdin = old }()
	if code, out, errs := runCLI(t, runApp, "deploy", "-f", "-", "--detach"); code != 0 {
		t.Fatalf("deploy over HTTPS: exit %d %s %s", code, out, errs)
	}
	code, out, errs := runCLI(t, runApp, "list")
	if code != 0 || !strings.Contains(out, "/cli/web") {
		t.Errorf("list over HTTPS: exit %d %q %q", code, out, errs)
	}
	// Credentials in the URL win over the environment.
	wrong := strings.Replace(url, "https://", "https://ops:wrong@", 1)
	if code, _, errs := runCLI(t, runApp, "list", "--master", wrong); code != 1 || !strings.Contains(errs, "(HTTP 401)") {
		t.Errorf("wrong credentials in the URL: exit %d %q", code, errs)
	}
}

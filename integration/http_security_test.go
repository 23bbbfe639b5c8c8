package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/testca"
)

// TestAPIOverHTTPSWithCredentials runs the real `atoll master` with
// --tls-cert/--tls-key and --http-credentials-file, as an operator would,
// and checks the API's door from outside: HTTPS only with the cluster's CA,
// no read without the credentials (apps with their env, the agents, the
// event stream), and no change from a foreign web page even with them.
// The CLI binary reaches it with ATOLL_CA_CERT and ATOLL_HTTP_CREDENTIALS.
func TestAPIOverHTTPSWithCredentials(t *testing.T) {
	dir := passableTempDir(t)
	c := &cluster{t: t, dir: dir, nats: startNATS(t, dir), httpAddr: freeAddr(t)}
	t.Cleanup(c.stop)
	ca := testca.New(t)
	caFile, certFile, keyFile := ca.WriteFiles(t, c.dir, "127.0.0.1")
	credsFile := filepath.Join(c.dir, "api-credentials")
	if err := os.WriteFile(credsFile, []byte("ops:s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.master = c.start("master", append(append([]string{"master"}, c.nats.args(natsauth.RoleMaster, "master-1")...),
		"--http", c.httpAddr, "--data-dir", filepath.Join(c.dir, "master"),
		"--tls-cert", certFile, "--tls-key", keyFile, "--http-credentials-file", credsFile)...)
	api := "https://" + c.httpAddr

	trusting := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: ca.ClientConfig()}}
	call := func(method, path, body string, header ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, api+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := trusting.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Type") == "text/event-stream" {
			return resp.StatusCode, "" // the stream never ends: the status is the answer
		}
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	c.waitFor(15*time.Second, "the master answers /ping over HTTPS", func() (bool, string) {
		code, body := call("GET", "/ping", "")
		return code == 200, fmt.Sprintf("%d %s", code, body)
	})
	auth := []string{"Authorization", "Basic " + basic("ops", "s3cret-pw")}

	// Only with the CA, only over TLS.
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(api + "/ping"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA: %v", err)
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + c.httpAddr + "/v2/apps"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain HTTP answered 200")
		}
	}

	const app = `{"id":"/sec/db","cmd":"sleep 1000","instances":0,"cpus":0.1,"mem":16,"env":{"DB_PASSWORD":"hunter2"}}`
	if code, body := call("POST", "/v2/apps", app, append([]string{"Content-Type", "application/json"}, auth...)...); code != 201 {
		t.Fatalf("create with the credentials: %d %s", code, body)
	}
	for _, path := range []string{"/v2/apps", "/master/state", "/v2/events", "/v2/apps/sec/db", "/ui/"} {
		code, body := call("GET", path, "")
		if code != 401 || strings.Contains(body, "hunter2") {
			t.Errorf("GET %s without credentials: %d %s", path, code, body)
		}
		if code, body := call("GET", path, "", "Authorization", "Basic "+basic("ops", "wrong")); code != 401 {
			t.Errorf("GET %s with a wrong password: %d %s", path, code, body)
		}
		if code, body := call("GET", path, "", auth...); code != 200 {
			t.Errorf("GET %s with the credentials: %d %s", path, code, body)
		}
	}
	for _, path := range []string{"/ping", "/master/health"} {
		if code, _ := call("GET", path, ""); code != 200 {
			t.Errorf("GET %s without credentials: %d", path, code)
		}
	}

	// A foreign page in the operator's browser posts text/plain, which
	// needs no CORS preflight; the browser adds the cached credentials.
	const evil = `{"id":"/sec/evil","cmd":"id > /tmp/pwned","instances":1,"cpus":0.1,"mem":16}`
	code, body := call("POST", "/v2/apps", evil, append([]string{"Content-Type", "text/plain", "Origin", "http://evil.example",
		"Sec-Fetch-Site", "cross-site"}, auth...)...)
	if code != 403 {
		t.Errorf("text/plain POST from a foreign origin: %d %s", code, body)
	}
	if code, body := call("POST", "/v2/apps", evil, append([]string{"Content-Type", "text/plain"}, auth...)...); code != 415 || !strings.Contains(body, "Unsupported Media Type") {
		t.Errorf("text/plain POST: %d %s", code, body)
	}
	_, body = call("GET", "/v2/apps", "", auth...)
	var apps struct {
		Apps []struct {
			ID string `json:"id"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(body), &apps); err != nil || len(apps.Apps) != 1 || apps.Apps[0].ID != "/sec/db" {
		t.Errorf("apps after the refused posts: %v %s", err, body)
	}
	_, metrics := call("GET", "/metrics", "", auth...)
	for _, want := range []string{`atoll_master_http_refused_total{reason="cross_origin"} 1`, `atoll_master_http_refused_total{reason="media_type"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics without %s", want)
		}
	}

	// The CLI, with the CA and the credentials from the environment.
	cli := exec.Command(atollBin, "app", "list")
	cli.Env = append(os.Environ(), "ATOLL_MASTER="+api, "ATOLL_CA_CERT="+caFile, "ATOLL_HTTP_CREDENTIALS=ops:s3cret-pw")
	out, err := cli.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "/sec/db") {
		t.Errorf("atoll app list over HTTPS: %v\n%s", err, out)
	}
	log, _ := os.ReadFile(c.master.log)
	if strings.Contains(string(log), "s3cret-pw") {
		t.Errorf("the master's log shows the password")
	}
	if !strings.Contains(string(log), "api call refused") {
		t.Errorf("the master's log does not show the refusals")
	}
}

// basic is the value of a basic Authorization header after "Basic ".
func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

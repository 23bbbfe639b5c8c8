// Package registrytest runs a real Docker distribution registry (Debian's
// docker-registry package) on loopback for tests: a foreground process
// owned by the test binary, with its own config and storage in a folder of
// the test's, never the package's default config (which listens on :5000
// on every interface).
package registrytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/atollhq/atoll/internal/freeport"
)

// Binary is where Debian's docker-registry package installs the registry.
const Binary = "/usr/bin/docker-registry"

// ErrNotInstalled is returned by Launch when the registry binary is missing.
var ErrNotInstalled = errors.New("registrytest: docker-registry not installed (apt-get install docker-registry)")

// startTimeout bounds how long the registry may take to answer /v2/ on a
// loaded machine.
const startTimeout = 30 * time.Second

// Options change how a registry runs.
type Options struct {
	// Users, when not empty, turns on htpasswd authentication with these
	// user → password pairs: a private registry.
	Users map[string]string
}

// Registry is a running registry.
type Registry struct {
	// Host is "127.0.0.1:<port>", the registry part of image references.
	Host string
	// Dir holds the config, the htpasswd file, the storage and the log.
	Dir string

	cmd    *exec.Cmd
	exited chan struct{}
}

// Installed reports whether Launch can work here.
func Installed() bool {
	_, err := os.Stat(Binary)
	return err == nil
}

// Require skips t when the registry is not installed, except under
// CI=true, where a missing registry fails the run.
func Require(t testing.TB) {
	t.Helper()
	if Installed() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(ErrNotInstalled)
	}
	t.Skip(ErrNotInstalled)
}

// Start launches a registry for t and stops it when t ends.
func Start(t testing.TB, opt Options) *Registry {
	t.Helper()
	Require(t)
	r, err := Launch(t.TempDir(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// Launch starts a registry with its files in dir and waits until it
// answers. Close stops it.
func Launch(dir string, opt Options) (*Registry, error) {
	if !Installed() {
		return nil, ErrNotInstalled
	}
	port, err := freeport.Reserve("127.0.0.1", false)
	if err != nil {
		return nil, fmt.Errorf("registrytest: %w", err)
	}
	r := &Registry{Host: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, exited: make(chan struct{})}
	config, err := r.writeConfig(opt)
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return nil, fmt.Errorf("registrytest: %w", err)
	}
	defer logf.Close()
	r.cmd = exec.Command(Binary, "serve", config)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	// Its own process group: a test binary killed mid-run does not take
	// the terminal's signals to it, and Close signals only this process.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Pdeathsig fires when the thread that started the process ends, not
	// the process: a thread the Go runtime retires (one a goroutine left
	// locked, as namespace code does) would kill the registry mid-test.
	// The starting thread stays locked to this goroutine until the
	// registry exits.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := r.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		r.cmd.Wait()
		close(r.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("registrytest: start %s: %w", Binary, err)
	}
	if err := r.waitReady(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Registry) writeConfig(opt Options) (string, error) {
	var auth string
	if len(opt.Users) > 0 {
		var lines bytes.Buffer
		users := make([]string, 0, len(opt.Users))
		for u := range opt.Users {
			users = append(users, u)
		}
		sort.Strings(users)
		for _, u := range users {
			// MinCost: the registry checks the hash on every request, and
			// the default cost makes a push take seconds.
			h, err := bcrypt.GenerateFromPassword([]byte(opt.Users[u]), bcrypt.MinCost)
			if err != nil {
				return "", fmt.Errorf("registrytest: htpasswd: %w", err)
			}
			fmt.Fprintf(&lines, "%s:%s\n", u, h)
		}
		pw := filepath.Join(r.Dir, "htpasswd")
		if err := os.WriteFile(pw, lines.Bytes(), 0o600); err != nil {
			return "", fmt.Errorf("registrytest: %w", err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: atoll-test\n    path: %s\n", pw)
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: atoll-test-secret
%s`, filepath.Join(r.Dir, "data"), r.Host, auth)
	path := filepath.Join(r.Dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("registrytest: %w", err)
	}
	return path, nil
}

// waitReady polls GET /v2/ until the registry answers (200, or 401 when it
// wants credentials), it exits, or startTimeout passes.
func (r *Registry) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Host+"/v2/", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case <-r.exited:
			return fmt.Errorf("registrytest: docker-registry exited before answering: %s", r.log())
		case <-ctx.Done():
			return fmt.Errorf("registrytest: docker-registry on %s did not answer within %v: %s", r.Host, startTimeout, r.log())
		case <-tick.C:
		}
	}
}

func (r *Registry) log() string {
	b, _ := os.ReadFile(filepath.Join(r.Dir, "registry.log"))
	return strings.TrimSpace(string(b))
}

// Close stops the registry: SIGTERM, then SIGKILL after a few seconds.
func (r *Registry) Close() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
	}
}

package lbsync

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/internal/freeport"
)

// haproxyBin finds haproxy; under CI=true a missing one fails the test
// (STYLE.md), elsewhere it skips.
func haproxyBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("haproxy not installed (apt-get install -y haproxy)")
		}
		t.Skip("haproxy not installed")
	}
	return bin
}

// TestCheckWithHAProxy runs the real `haproxy -c` on the golden state's
// config (without the app whose certificate does not exist here).
func TestCheckWithHAProxy(t *testing.T) {
	bin := haproxyBin(t)
	dir := t.TempDir()
	w := goldenWorld()
	delete(w.s.Apps, "/secure")
	cfg := Config{Group: "*", MapPath: filepath.Join(dir, "hosts.map"), SocketPath: filepath.Join(dir, "admin.sock")}
	r := mustRender(t, nil, w.s, cfg)
	for path, text := range map[string]string{
		filepath.Join(dir, "haproxy.cfg"):     r.Config,
		filepath.Join(dir, "hosts.map"):       r.HostMap,
		filepath.Join(dir, "hosts.map.paths"): r.PathMap,
	} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := CheckWithHAProxy(ctx, bin, filepath.Join(dir, "haproxy.cfg")); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.cfg")
	if err := os.WriteFile(bad, []byte(r.Config+"\nbackend x\n  balance nonsense\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := CheckWithHAProxy(ctx, bin, bad)
	if err == nil || !strings.Contains(err.Error(), "balance") {
		t.Errorf("bad config: %v", err)
	}
}

// freePort is a loopback port for HAProxy to bind later (see freeport).
func freePort(t *testing.T) int { return freeport.Port(t, "127.0.0.1") }

func runtimeAPI(t *testing.T, sock string, cmds ...string) string {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(strings.Join(cmds, ";") + "\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestRuntimeCommandsOnHAProxy starts a real HAProxy on a render and
// applies a scale-up Plan through the runtime API: the free slots accept
// the new address and port without a reload.
func TestRuntimeCommandsOnHAProxy(t *testing.T) {
	bin := haproxyBin(t)
	dir := t.TempDir()
	w := echoWorld(1)
	w.app("/echo", []int{freePort(t)}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_BIND_ADDR": "127.0.0.1"})
	cfg := Config{BindAddr: "127.0.0.1", HTTPPort: freePort(t), StatsBind: "127.0.0.1:" + strconv.Itoa(freePort(t)),
		MapPath: filepath.Join(dir, "hosts.map"), SocketPath: filepath.Join(dir, "admin.sock")}
	prev := mustRender(t, nil, w.s, cfg)
	write := func(r *Result) {
		for path, text := range map[string]string{
			filepath.Join(dir, "haproxy.cfg"): r.Config, cfg.MapPath: r.HostMap, cfg.MapPath + ".paths": r.PathMap,
		} {
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(prev)
	cmd := exec.Command(bin, "-W", "-f", filepath.Join(dir, "haproxy.cfg"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(cfg.SocketPath); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no runtime socket: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.task("/echo", "/echo.t05", "a2", 31005)
	w.app("/web", nil, nil) // an app out of the group changes nothing
	w.app("/vh", []int{0}, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "vh.example"})
	next := mustRender(t, prev, w.s, cfg)
	p := Diff(prev, next)
	if !p.Reload {
		t.Error("new vhost backend should need a reload")
	}
	// Apply only the slot and map commands: the backend of /vh does not
	// exist yet, but map entries are plain strings.
	got := runtimeAPI(t, cfg.SocketPath, p.Commands...)
	if strings.Contains(strings.ToLower(got), "error") || strings.Contains(got, "can't") || strings.Contains(got, "not found") {
		t.Fatalf("runtime API: %q for %v", got, p.Commands)
	}
	state := runtimeAPI(t, cfg.SocketPath, "show servers state")
	var line string
	for _, l := range strings.Split(state, "\n") {
		if strings.Contains(l, " echo_") && strings.Contains(l, "-2 ") {
			line = l
		}
	}
	if !strings.Contains(line, " 127.0.10.2 ") || !strings.Contains(line, " 31005") {
		t.Errorf("slot 2 after commands: %q\n%s", line, state)
	}
	// Fields: be_id be_name srv_id srv_name srv_addr srv_op_state
	// srv_admin_state ...: op state 2 is running; admin state 4 (config
	// maint marker from "disabled") without the 0x23 maint bits is ready.
	if f := strings.Fields(line); len(f) < 7 || f[5] != "2" || f[6] != "4" {
		t.Errorf("slot 2 not running: %q", line)
	}
	if m := runtimeAPI(t, cfg.SocketPath, "show map "+cfg.MapPath); !strings.Contains(m, "vh.example vh_p0") {
		t.Errorf("map: %q", m)
	}
}

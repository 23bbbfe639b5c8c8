package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/atollhq/atoll/internal/freeport"
)

// devCluster is a running `atoll dev`.
type devCluster struct {
	cmd     *exec.Cmd
	dir     string // its --data-dir and log, in a temp dir
	logPath string
	log     *os.File
	api     *api
	socket  string // the HAProxy master's CLI
	done    chan struct{}
	waitErr error
}

// freePort is a free loopback port for a listener `atoll dev` opens.
func freePort() (int, error) { return freeport.Reserve("127.0.0.1", false) }

func freeAddrs(n int) ([]string, error) {
	out := make([]string, n)
	for i := range out {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		out[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	return out, nil
}

// startDev runs `atoll dev` on free loopback ports with its output in
// dir/atoll-dev.log, and returns once its API answers.
func startDev(ctx context.Context, bin string, agents int) (*devCluster, error) {
	dir, err := os.MkdirTemp("", "atoll-bench-deploy")
	if err != nil {
		return nil, err
	}
	// The agents' tasks run as nobody and must reach their sandboxes
	// inside (MkdirTemp makes it 0700).
	if err := os.Chmod(dir, 0o711); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	addrs, err := freeAddrs(7)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	httpAddr, natsAddr, dnsAddr, dnsHTTP, stats, metrics := addrs[0], addrs[1], addrs[2], addrs[3], addrs[4], addrs[5]
	_, lbHTTPPort, _ := net.SplitHostPort(addrs[6])
	// The API's credentials, as an operator gives them: in a file of
	// mode 0600; the benchmark's client sends them as user:pass@.
	credsFile := filepath.Join(dir, "api-credentials")
	if err := os.WriteFile(credsFile, []byte("bench:"+strconv.FormatInt(time.Now().UnixNano(), 36)+"\n"), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	creds, _ := os.ReadFile(credsFile)
	d := &devCluster{dir: dir, logPath: filepath.Join(dir, "atoll-dev.log"), done: make(chan struct{}),
		api:    newAPI("http://" + strings.TrimSpace(string(creds)) + "@" + httpAddr),
		socket: filepath.Join(dir, "data", "haproxy", "master.sock")}
	if d.log, err = os.Create(d.logPath); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	d.cmd = exec.Command(bin, "dev", "--http", httpAddr, "--nats", natsAddr, "--dns", dnsAddr, "--dns-http", dnsHTTP,
		"--resolvers", "127.0.0.1:9", "--lb-http-port", lbHTTPPort, "--lb-stats", stats, "--lb-metrics", metrics,
		"--data-dir", filepath.Join(dir, "data"), "--agents", strconv.Itoa(agents), "--http-credentials-file", credsFile)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	// Its own process group: a Ctrl-C of the benchmark reaches it once,
	// from stop.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		d.log.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start atoll dev: %w", err)
	}
	go func() { d.waitErr = d.cmd.Wait(); close(d.done) }()
	if err := d.waitReady(ctx, 30*time.Second); err != nil {
		serr := d.stop()
		d.cleanup(true)
		return nil, errors.Join(err, serr)
	}
	return d, nil
}

// waitReady waits for the API and for the HAProxy master's CLI.
func (d *devCluster) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, perr := d.api.get(ctx, "/ping", nil)
		_, serr := showProc(ctx, d.socket)
		if perr == nil && serr == nil {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("atoll dev exited: %v; its log:\n%s", d.waitErr, d.logTail(40))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("atoll dev not ready after %s (API: %v; HAProxy master: %v); its log:\n%s", timeout, perr, serr, d.logTail(40))
		}
	}
}

// stop sends SIGINT (atoll dev then stops its agents, which kill their
// tasks), waits, and checks that no task or HAProxy process is left; any
// left is killed and reported.
func (d *devCluster) stop() error {
	select {
	case <-d.done:
	default:
		_ = d.cmd.Process.Signal(os.Interrupt)
		select {
		case <-d.done:
		case <-time.After(60 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
			return fmt.Errorf("atoll dev did not stop within 60 s of SIGINT: killed")
		}
	}
	// HAProxy's old workers may take a moment after the master.
	var left []proc
	for end := time.Now().Add(10 * time.Second); ; {
		left = leftovers(d.dir)
		if len(left) == 0 || time.Now().After(end) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) == 0 {
		return nil
	}
	for _, p := range left {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	return fmt.Errorf("processes left after atoll dev stopped (now killed): %v", left)
}

// cleanup removes the temp dir, or keeps it and says where it is.
func (d *devCluster) cleanup(keep bool) {
	d.log.Close()
	if keep {
		fmt.Printf("\natoll dev's log: %s (data dir kept)\n", d.logPath)
		return
	}
	os.RemoveAll(d.dir)
}

// logTail is the last n lines of atoll dev's output.
func (d *devCluster) logTail(n int) string {
	lines := d.logLines(func(string) bool { return true })
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logLines is the lines of atoll dev's output that keep accepts.
func (d *devCluster) logLines(keep func(string) bool) []string {
	f, err := os.Open(d.logPath)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if keep(sc.Text()) {
			out = append(out, sc.Text())
		}
	}
	return out
}

var reMsg = regexp.MustCompile(`level=(WARN|ERROR) msg="([^"]*)"|msg="(killing task unknown to the master|task outlived its grace period[^"]*)"`)

// warnings counts atoll dev's warnings and errors (and its kills of tasks
// the master does not know) by message, for a failed or stalled deploy.
func (d *devCluster) warnings() string {
	counts := map[string]int{}
	d.logLines(func(l string) bool {
		if m := reMsg.FindStringSubmatch(l); m != nil {
			counts[m[1]+" "+m[2]+m[3]]++
		}
		return false
	})
	if len(counts) == 0 {
		return "no warnings in atoll dev's log"
	}
	var parts []string
	for k, v := range counts {
		parts = append(parts, fmt.Sprintf("%d × %s", v, strings.TrimSpace(k)))
	}
	sort.Strings(parts)
	return "atoll dev's log so far: " + strings.Join(parts, "; ")
}

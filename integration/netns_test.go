package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Tests that give tasks network namespaces on a bridge (container apps)
// change the network of the namespace they run in: a bridge with an
// address in 198.18.0.0/15, NAT rules, ip_forward. They run in a network
// namespace of their own, never in the machine's: the test binary runs
// itself again inside one (inOwnNetNS), with everything the test starts
// (NATS, masters, agents, HAProxy, the registry) on that namespace's
// loopback. The namespace, and with it the bridge and the rules, goes
// when the test ends.

const (
	// netnsEnv names the namespace a re-run test is inside.
	netnsEnv = "ATOLL_IT_NETNS"
	// binEnv hands the re-run test the atoll binary TestMain built.
	binEnv = "ATOLL_IT_BIN"
)

// inOwnNetNS reports whether the test runs in a namespace of its own.
// When it does not, it runs the test again in a new namespace, reports
// that run's result as the test's, and returns false: the caller returns.
func inOwnNetNS(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) != "" {
		return true
	}
	for _, bin := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is needed to run a test in a network namespace: %v", bin, err)
		}
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("network namespaces need root")
		}
		t.Skip("network namespaces need root")
	}
	ns := fmt.Sprintf("atoll-it-%d-%d", os.Getpid(), time.Now().UnixNano()%100000)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	ip("-n", ns, "link", "set", "lo", "up")

	deadline, ok := t.Deadline()
	timeout := 15 * time.Minute
	if ok {
		timeout = time.Until(deadline) - 10*time.Second
	}
	// nsenter, not `ip netns exec`: that one also mounts a sysfs of the
	// namespace over /sys, which hides the cgroup hierarchies the agents
	// hold their tasks in.
	cmd := exec.Command("nsenter", "--net=/var/run/netns/"+ns, "--", os.Args[0],
		"-test.run", "^"+t.Name()+"$", "-test.v", "-test.count", "1", "-test.timeout", timeout.String())
	cmd.Env = append(os.Environ(), netnsEnv+"="+ns, binEnv+"="+atollBin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	began := time.Now()
	err := cmd.Run()
	if err != nil || !bytes.Contains(out.Bytes(), []byte("--- PASS: "+t.Name())) {
		t.Fatalf("%s in network namespace %s: %v after %s:\n%s", t.Name(), ns, err,
			time.Since(began).Round(time.Millisecond), tail(out.Bytes(), 48<<10))
	}
	t.Logf("passed in network namespace %s in %s:\n%s", ns, time.Since(began).Round(time.Millisecond), tail(out.Bytes(), 4<<10))
	return false
}

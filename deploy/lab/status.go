package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"
)

// status prints what the lab runs, who leads, and how to reach it all.
func (l *Lab) status(w io.Writer) error {
	ns, err := labNamespaces()
	if err != nil {
		return err
	}
	if len(ns) == 0 {
		fmt.Fprintln(w, "lab: not running (make lab)")
		return nil
	}
	_ = l.detectMaster()
	a := newAPI()
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tNAMESPACE\tADDRESS\tPID\tSTATE\tLOG")
	for _, p := range procs() {
		state, pidStr := "down", "-"
		if pid, ok := l.alive(p); ok {
			state, pidStr = "up", fmt.Sprint(pid)
		}
		switch {
		case state == "up" && p.Role == "zk":
			if mode, err := a.zkMode(p.Host.Region); err == nil {
				state += " (" + mode + ")"
			} else {
				state += " (no answer)"
			}
		case state == "up" && p.Role == "master":
			if ld, err := a.leaderOf(p.Host.Region); err == nil {
				if ld == fmt.Sprintf("%s:%d", p.Host.IP(), masterPort) {
					state += " (LEADER)"
				} else {
					state += " (leader " + ld + ")"
				}
			} else {
				state += " (no leader)"
			}
		case p.Role == "master" && !l.runsMaster(p.Host.Region):
			state = "not run (master has no --zk)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Host.NS(), p.Host.IP(), pidStr, state, l.logFile(p))
	}
	tw.Flush()
	for _, r := range regions {
		up, err := linkUp(r)
		state := "up"
		if err != nil {
			state = "? " + err.Error()
		} else if !up {
			state = "DOWN (region cut)"
		}
		fmt.Fprintf(w, "region %d %-9s 198.18.%d.0/24  router link %s\n", r.N, r.Name, r.N, state)
	}
	fmt.Fprintf(w, "NATS: credentials and mTLS always on; authority, CA, certificates and credentials in %s\n", l.authDir())
	c := clientHost.NS()
	m1, s1 := host(regions[0], "m").IP(), host(regions[0], "s").IP()
	fmt.Fprintf(w, `
Reach it from the client host (%[1]s, %[2]s):
  ip netns exec %[1]s curl -sL %[3]s:%[5]d/v2/apps
  ip netns exec %[1]s curl -sL %[3]s:%[5]d/v2/leader
  ip netns exec %[1]s curl -sL %[3]s:%[5]d/master/state
  ip netns exec %[1]s dig +short @%[4]s leader.mesos
  ip netns exec %[1]s dig +short @%[4]s <app>.<group>.marathon.mesos
  ip netns exec %[1]s curl -s %[4]s:<servicePort>/      (HAProxy on region 1's sidecar)
  ATOLL_MASTER=http://%[3]s:%[5]d ip netns exec %[1]s %[6]s app list
Faults (go run ./deploy/lab <cmd>): kill|stop|start|restart <r1-master>, crash|boot <r2-a1>,
  cut|heal <frankfurt>, partition|unpartition <r3>; make lab-down removes it all.
`, c, clientHost.IP(), m1, s1, masterPort, l.Bin)
	return nil
}

// linkUp says whether the router's link to region r is up.
func linkUp(r Region) (bool, error) {
	out, err := runOut("ip", "-n", routerNS, "-o", "link", "show", r.RouterDev())
	if err != nil {
		return false, err
	}
	return !strings.Contains(out, "state DOWN") && strings.Contains(out, ",UP"), nil
}

func runOut(name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return out.String(), nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

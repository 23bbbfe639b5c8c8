package main

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

// up builds the lab from scratch: whatever a previous lab left is removed
// first, so a half-built lab never gets in the way.
func (l *Lab) up() error {
	if err := l.checkDeps(); err != nil {
		return err
	}
	if err := l.detectMaster(); err != nil {
		return err
	}
	if err := l.down(); err != nil {
		return fmt.Errorf("clean the previous lab: %w", err)
	}
	if err := os.RemoveAll(l.Dir); err != nil {
		return fmt.Errorf("clean %s: %w", l.Dir, err)
	}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return err
	}
	step := func(what string) func() {
		t0 := time.Now()
		fmt.Printf("lab up: %s ...", what)
		return func() { fmt.Printf(" %.1fs\n", time.Since(t0).Seconds()) }
	}
	done := step("NATS authority and CA, a certificate per host, a credential per process")
	if err := l.makeAuth(); err != nil {
		return err
	}
	done()
	done = step("network: router, 3 region switches, 16 hosts")
	if err := buildNetwork(); err != nil {
		return err
	}
	done()
	a := newAPI()
	done = step("ZooKeeper ensemble (3) and NATS cluster (3)")
	if err := l.startRole("zk", "nats"); err != nil {
		return err
	}
	if err := waitFor(90*time.Second, "a ZooKeeper quorum", func() error { return zkQuorum(a) }); err != nil {
		return l.explain(err, "r1-zk", "r2-zk", "r3-zk")
	}
	done()
	if !l.MasterZK {
		fmt.Printf("lab up: WARNING: %s master has no --zk yet: running ONE master (r1), with its local store\n", l.Bin)
	}
	done = step(fmt.Sprintf("masters (%d)", len(l.masterRegions())))
	if err := l.startRole("master"); err != nil {
		return err
	}
	if err := waitFor(60*time.Second, "a leader", func() error { _, err := currentLeader(a, l.masterRegions()); return err }); err != nil {
		return l.explain(err, "r1-master", "r2-master", "r3-master")
	}
	done()
	done = step("agents (6) and sidecars (3)")
	if err := l.startRole("agent", "sidecar"); err != nil {
		return err
	}
	if err := waitFor(60*time.Second, "6 active agents", func() error { return activeAgents(a, l.masterRegions(), 6) }); err != nil {
		return l.explain(err, "r1-agent1", "r1-sidecar")
	}
	if err := waitFor(30*time.Second, "the sidecars' DNS", func() error { return sidecarsAnswer(a) }); err != nil {
		return l.explain(err, "r1-sidecar", "r2-sidecar", "r3-sidecar")
	}
	done()
	return l.status(os.Stdout)
}

func (l *Lab) checkDeps() error {
	for _, c := range []string{"ip", "iptables", "haproxy", zkServerScript, l.Bin} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%s missing (make lab installs iptables, iproute2, zookeeper, haproxy; make build makes bin/atoll)", c)
		}
	}
	return nil
}

// startRole starts the processes of the given roles in every region.
func (l *Lab) startRole(roles ...string) error {
	for _, p := range procs() {
		for _, role := range roles {
			if p.Role != role || (role == "master" && !l.runsMaster(p.Host.Region)) {
				continue
			}
			if err := l.start(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// explain adds the tails of the named logs to a bring-up error.
func (l *Lab) explain(err error, names ...string) error {
	msg := err.Error()
	for _, n := range names {
		p, perr := procByName(n)
		if perr != nil {
			continue
		}
		msg += fmt.Sprintf("\n--- %s (%s):\n%s", n, l.logFile(p), tail(l.logFile(p), 8))
	}
	return fmt.Errorf("%s", msg)
}

// waitFor polls check until it returns nil or timeout passes.
func waitFor(timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s after %s: %w", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func zkQuorum(a *api) error {
	leaders, followers := 0, 0
	for _, r := range regions {
		mode, err := a.zkMode(r)
		if err != nil {
			return fmt.Errorf("zookeeper r%d: %w", r.N, err)
		}
		switch mode {
		case "leader":
			leaders++
		case "follower":
			followers++
		}
	}
	if leaders != 1 || followers != 2 {
		return fmt.Errorf("zookeeper: %d leaders, %d followers", leaders, followers)
	}
	return nil
}

// currentLeader is the leader every running master agrees on.
func currentLeader(a *api, rs []Region) (string, error) {
	leader := ""
	for _, r := range rs {
		l, err := a.leaderOf(r)
		if err != nil {
			return "", fmt.Errorf("master r%d: %w", r.N, err)
		}
		if leader != "" && l != leader {
			return "", fmt.Errorf("masters disagree: %s and %s", leader, l)
		}
		leader = l
	}
	if leader == "" {
		return "", fmt.Errorf("no leader")
	}
	return leader, nil
}

func activeAgents(a *api, rs []Region, want int) error {
	ags, err := a.agents(masterURL(rs[0]))
	if err != nil {
		return err
	}
	n := 0
	for _, ag := range ags {
		if ag.Active {
			n++
		}
	}
	if n != want {
		return fmt.Errorf("%d active agents", n)
	}
	return nil
}

func sidecarsAnswer(a *api) error {
	for _, r := range regions {
		ips, _, err := a.lookup(host(r, "s").IP(), "leader.mesos", time.Second)
		if err != nil {
			return fmt.Errorf("sidecar r%d: %w", r.N, err)
		}
		if len(ips) == 0 {
			return fmt.Errorf("sidecar r%d: no leader.mesos yet", r.N)
		}
	}
	return nil
}

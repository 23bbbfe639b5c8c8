package main

import (
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Lab is one lab on this machine: where its files are and how its
// processes are started.
type Lab struct {
	Dir, Bin         string
	AgentTimeout     time.Duration
	ZKSessionTimeout time.Duration
	// MasterZK: `atoll master` has --zk, so three masters elect a leader
	// in the ZooKeeper ensemble; without it the lab runs one master.
	MasterZK        bool
	MasterZKTimeout bool
}

// detectMaster reads `atoll master -h` for the election flags, which land
// separately from the lab.
func (l *Lab) detectMaster() error {
	out, _ := exec.Command(l.Bin, "master", "-h").CombinedOutput()
	if !strings.Contains(string(out), "Usage of atoll master") {
		return fmt.Errorf("%s master -h: %s (run make build)", l.Bin, strings.TrimSpace(string(out)))
	}
	l.MasterZK = strings.Contains(string(out), "\n  -zk ")
	l.MasterZKTimeout = strings.Contains(string(out), "\n  -zk-session-timeout ")
	return nil
}

// masterRegions are the regions whose master the lab runs.
func (l *Lab) masterRegions() []Region {
	if l.MasterZK {
		return regions
	}
	return regions[:1]
}

// hostByName accepts "r1-a2" (or the namespace, "atoll-r1-a2").
func hostByName(s string) (Host, error) {
	s = strings.TrimPrefix(s, nsPrefix)
	for _, h := range allHosts() {
		if h.Name() == s {
			return h, nil
		}
	}
	return Host{}, fmt.Errorf("no lab host %q (r<1-3>-m|n|a1|a2|s, r1-c)", s)
}

// procsOn lists the processes of host h.
func procsOn(h Host) []Proc {
	var ps []Proc
	for _, p := range procs() {
		if p.Host == h {
			ps = append(ps, p)
		}
	}
	return ps
}

// crashHost kills everything running on h at once, like a power cut.
func (l *Lab) crashHost(h Host) error { return killNamespace(h.NS()) }

// bootHost starts h's processes again, as after a reboot.
func (l *Lab) bootHost(h Host) error {
	for _, p := range procsOn(h) {
		if p.Role == "master" && !l.runsMaster(p.Host.Region) {
			continue
		}
		if err := l.start(p); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) runsMaster(r Region) bool {
	for _, m := range l.masterRegions() {
		if m == r {
			return true
		}
	}
	return false
}

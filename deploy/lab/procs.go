package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Proc is one long-running process of the lab, run in its host's
// namespace with its output in <dir>/<name>.log and its pid in
// <dir>/<name>.pid.
type Proc struct {
	Name string // "r1-master": region and role, unique in the lab
	Role string // zk, nats, master, agent, sidecar
	Host Host
}

// procs lists every process of the lab in start order.
func procs() []Proc {
	var ps []Proc
	for _, role := range []struct{ role, host string }{
		{"zk", "m"}, {"nats", "n"}, {"master", "m"},
		{"agent1", "a1"}, {"agent2", "a2"}, {"sidecar", "s"},
	} {
		for _, r := range regions {
			ps = append(ps, Proc{
				Name: fmt.Sprintf("r%d-%s", r.N, role.role),
				Role: strings.TrimRight(role.role, "12"),
				Host: host(r, role.host),
			})
		}
	}
	return ps
}

// procByName finds a process by its name ("r2-master").
func procByName(name string) (Proc, error) {
	for _, p := range procs() {
		if p.Name == name {
			return p, nil
		}
	}
	return Proc{}, fmt.Errorf("no lab process %q (e.g. r1-zk, r2-nats, r3-master, r1-agent2, r2-sidecar)", name)
}

// procIn returns region r's process of a role ("master", "agent1").
func procIn(r Region, role string) Proc {
	p, err := procByName(fmt.Sprintf("r%d-%s", r.N, role))
	if err != nil {
		panic(err)
	}
	return p
}

// command is the argv and extra environment that start p.
func (l *Lab) command(p Proc) (argv, env []string, err error) {
	r, ip, work := p.Host.Region, p.Host.IP(), l.workDir(p)
	// Every node talks to its own region's NATS node only: a client
	// connected across regions would sit on a dead TCP connection for
	// minutes (NATS pings every 2 min) when that other region goes dark.
	// Regions reach each other through the NATS cluster's routes.
	nats := []string{"--nats=" + natsURL(r)}
	if natsRole(p) != "" {
		auth, err := l.clientAuthArgs(p)
		if err != nil {
			return nil, nil, err
		}
		nats = append(nats, auth...)
	}
	switch p.Role {
	case "zk":
		cfg, err := writeZooKeeperConfig(work, r)
		if err != nil {
			return nil, nil, err
		}
		return []string{zkServerScript, "start-foreground", cfg}, []string{
			"ZOOCFGDIR=" + work, "ZOO_LOG_DIR=" + work,
			// Small heap, no JIT tiers: three JVMs share two cores with everyone else.
			"JVMFLAGS=-Xmx128m -Xms32m -XX:+UseSerialGC -XX:TieredStopAtLevel=1",
		}, nil
	case "nats":
		auth, err := l.serverAuthArgs(p)
		if err != nil {
			return nil, nil, err
		}
		return append([]string{l.Bin, "nats", "--listen", fmt.Sprintf("%s:%d", ip, natsPort),
			"--name", p.Host.Name(), "--cluster-listen", fmt.Sprintf("%s:%d", ip, routePort),
			"--routes", natsRoutes()}, auth...), nil, nil
	case "master":
		argv := append([]string{l.Bin, "master"}, nats...)
		argv = append(argv, "--http", fmt.Sprintf("%s:%d", ip, masterPort),
			"--hostname", p.Host.Name(), "--data-dir", filepath.Join(work, "data"),
			"--agent-timeout", l.AgentTimeout.String())
		if l.MasterZK {
			argv = append(argv, "--zk", zkConnect())
			if l.MasterZKTimeout {
				argv = append(argv, "--zk-session-timeout", l.ZKSessionTimeout.String())
			}
		}
		return argv, nil, nil
	case "agent":
		// The hostname is the credential's name (the master takes an
		// agent's identity from its credential).
		argv := append([]string{l.Bin, "agent"}, nats...)
		return append(argv, "--advertise-ip", ip, "--hostname", p.Host.Name(),
			"--attributes", fmt.Sprintf("region:%s;zone:%s-%s", r.Name, r.Name, p.Host.Short),
			"--cpus", "2", "--mem", "2048", "--disk", "4096", "--ports", "31000-31999",
			"--work-dir", filepath.Join(work, "work")), nil, nil
	case "sidecar":
		// --node is the credential's name too: LB reports go out under it.
		argv := append([]string{l.Bin, "sidecar"}, nats...)
		return append(argv, "--dns", ip+":53", "--node", p.Host.Name(),
			"--haproxy-config", filepath.Join(work, "haproxy", "haproxy.cfg"),
			// Names outside the cluster are nobody's business in the lab: no
			// query may leave 198.18.0.0/15, so forward for no client.
			"--recursion-cidrs", "", "--resolvers", "127.0.0.1:1"), nil, nil
	}
	return nil, nil, fmt.Errorf("process %s: unknown role %q", p.Name, p.Role)
}

func (l *Lab) workDir(p Proc) string { return filepath.Join(l.Dir, p.Name) }
func (l *Lab) logFile(p Proc) string { return filepath.Join(l.Dir, p.Name+".log") }
func (l *Lab) pidFile(p Proc) string { return filepath.Join(l.Dir, p.Name+".pid") }

// ensureDir makes p's work folder.
func (l *Lab) ensureDir(p Proc) error {
	if err := os.MkdirAll(l.workDir(p), 0o755); err != nil {
		return fmt.Errorf("work folder of %s: %w", p.Name, err)
	}
	return nil
}

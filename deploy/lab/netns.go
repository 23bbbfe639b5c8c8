package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// run runs a command (ip, iptables, sysctl) and returns its error with its
// output, so a failed step says what the kernel said.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// runAll runs commands in order and stops at the first error.
func runAll(cmds [][]string) error {
	for _, c := range cmds {
		if err := run(c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// labNamespaces lists the namespaces that exist and belong to the lab.
func labNamespaces() ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var ns []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], nsPrefix) {
			ns = append(ns, f[0])
		}
	}
	return ns, nil
}

// buildNetwork makes the router, one switch per region and every host,
// all inside namespaces: nothing is added to the machine's own network.
func buildNetwork() error {
	cmds := [][]string{
		{"ip", "netns", "add", routerNS},
		{"ip", "-n", routerNS, "link", "set", "lo", "up"},
		{"ip", "netns", "exec", routerNS, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"},
	}
	for _, r := range regions {
		sw := r.SwitchNS()
		cmds = append(cmds,
			[]string{"ip", "netns", "add", sw},
			[]string{"ip", "-n", sw, "link", "add", "br0", "type", "bridge"},
			[]string{"ip", "-n", sw, "link", "set", "br0", "up"},
			// The router's leg in the region: cut it and the region is dark.
			[]string{"ip", "-n", routerNS, "link", "add", r.RouterDev(), "type", "veth", "peer", "name", "uplink", "netns", sw},
			[]string{"ip", "-n", sw, "link", "set", "uplink", "master", "br0", "up"},
			[]string{"ip", "-n", routerNS, "addr", "add", r.Gateway() + "/24", "dev", r.RouterDev()},
			[]string{"ip", "-n", routerNS, "link", "set", r.RouterDev(), "up"},
		)
	}
	for _, h := range allHosts() {
		sw, ns := h.Region.SwitchNS(), h.NS()
		cmds = append(cmds,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", sw, "link", "add", "to-" + h.Short, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"ip", "-n", sw, "link", "set", "to-" + h.Short, "master", "br0", "up"},
			[]string{"ip", "-n", ns, "addr", "add", h.IP() + "/24", "dev", "eth0"},
			[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
			[]string{"ip", "-n", ns, "route", "add", "198.18.0.0/15", "via", h.Region.Gateway()},
		)
	}
	return runAll(cmds)
}

// deleteNamespaces removes every lab namespace; their links go with them.
func deleteNamespaces() error {
	ns, err := labNamespaces()
	if err != nil {
		return err
	}
	for _, n := range ns {
		if err := run("ip", "netns", "del", n); err != nil {
			return err
		}
	}
	return nil
}

// setRegionLink brings the router's link to region r up or down.
func setRegionLink(r Region, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	// Down, the router drops the region's route: packets from the other
	// regions die at the router, silently for TCP (a soft ICMP error),
	// as when the paper's VPN tunnel went down. Up, the kernel puts the
	// route back.
	return run("ip", "-n", routerNS, "link", "set", r.RouterDev(), state)
}

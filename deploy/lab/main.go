// Command lab builds atoll's three-region hybrid cloud (the seeds' Oslo,
// Frankfurt, Ireland) on one machine from network namespaces, injects the
// paper's failures into it, and runs the chaos scenarios against it.
//
//	go run ./deploy/lab up|down|status
//	go run ./deploy/lab kill|stop|start|restart <process>   e.g. r2-master
//	go run ./deploy/lab crash|boot <host>                   e.g. r1-a2 (every process of the host)
//	go run ./deploy/lab cut|heal <region>                   e.g. frankfurt, r2, 2
//	go run ./deploy/lab partition|unpartition <region>      iptables DROP between that master node and the others
//	go run ./deploy/lab chaos                               the four scenarios under client traffic
//
// Run as root. Everything lives in namespaces named atoll-*, with
// addresses from 198.18.0.0/15; logs and pids are under --dir.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	fs := flag.NewFlagSet("lab", flag.ExitOnError)
	dir := fs.String("dir", "/tmp/atoll-lab", "folder of the lab's logs, pids and data")
	bin := fs.String("bin", "bin/atoll", "the atoll binary")
	agentTimeout := fs.Duration("agent-timeout", 10*time.Second, "masters' --agent-timeout")
	zkTimeout := fs.Duration("zk-session-timeout", 4*time.Second, "masters' --zk-session-timeout (when they have it)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: lab [flags] up|down|status|kill|stop|start|restart|crash|boot|cut|heal|partition|unpartition|chaos [arg]")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() == 0 {
		fs.Usage()
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "lab: needs root (network namespaces, iptables)")
		os.Exit(1)
	}
	absBin, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
	l := &Lab{Dir: *dir, Bin: absBin, AgentTimeout: *agentTimeout, ZKSessionTimeout: *zkTimeout}
	if err := l.dispatch(fs.Arg(0), fs.Args()[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		if fs.Arg(0) == "up" {
			fmt.Fprintf(os.Stderr, "lab: the half-built lab stays for a look (logs in %s); make lab-down removes it, make lab starts over\n", l.Dir)
		}
		os.Exit(1)
	}
}

func (l *Lab) dispatch(cmd string, args []string) error {
	arg := func() (string, error) {
		if len(args) != 1 {
			return "", fmt.Errorf("%s wants one argument", cmd)
		}
		return args[0], nil
	}
	switch cmd {
	case "up":
		return l.up()
	case "down":
		return l.down()
	case "status":
		return l.status(os.Stdout)
	case "chaos":
		return l.chaos(os.Stdout)
	}
	a, err := arg()
	if err != nil {
		return err
	}
	switch cmd {
	case "kill", "stop", "start", "restart":
		p, err := procByName(a)
		if err != nil {
			return err
		}
		if err := l.detectMaster(); err != nil {
			return err
		}
		switch cmd {
		case "kill":
			return l.stop(p, true, time.Second)
		case "stop":
			return l.stop(p, false, 5*time.Second)
		case "start":
			return l.start(p)
		default:
			if err := l.stop(p, false, 5*time.Second); err != nil {
				return err
			}
			return l.start(p)
		}
	case "crash":
		h, err := hostByName(a)
		if err != nil {
			return err
		}
		return l.crashHost(h)
	case "boot":
		h, err := hostByName(a)
		if err != nil {
			return err
		}
		if err := l.detectMaster(); err != nil {
			return err
		}
		return l.bootHost(h)
	case "cut", "heal":
		r, err := regionByName(a)
		if err != nil {
			return err
		}
		return setRegionLink(r, cmd == "heal")
	case "partition", "unpartition":
		r, err := regionByName(a)
		if err != nil {
			return err
		}
		if cmd == "partition" {
			return partitionMaster(r)
		}
		return unpartitionMaster(r)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

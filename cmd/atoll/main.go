// Command atoll is the one binary of the atoll cluster platform: master,
// agent, DNS sidecar, dev cluster, demo server and the user CLI.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/atollhq/atoll/internal/startgate"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"dev", "run a whole cluster on this machine (NATS, master, agents, DNS, HAProxy)", runDev},
		{"master", "run a master (leader, state, scheduler, Marathon API)", runMaster},
		{"agent", "run an agent that registers over NATS and runs tasks", runAgent},
		{"sidecar", "run a node's sidecar: DNS and HAProxy on one follower of the cluster", runSidecar},
		{"dns", "run the DNS server alone (Mesos-DNS names, forwarding)", runDNS},
		{"lb", "run HAProxy kept in line with the cluster (NATS or --sse)", runLB},
		{"nats", "run the embedded NATS server alone (authentication always on)", runNATS},
		{"creds", "the cluster's authority: issue and revoke NATS credentials, TLS certificates", runCreds},
		{"echo", "run the demo HTTP server (answers with its task id)", runEcho},
		{"app", "list, show, deploy, scale, restart, delete apps", runApp},
		{"task", "list tasks", runTask},
		{"agents", "list agents", runAgents},
		{"events", "tail the event stream (/v2/events), readable or --json", runEvents},
		{"top", "live table of apps and agents, redrawn on events", runTop},
		{"version", "print the version", func(_ context.Context, _ []string, out, _ io.Writer) int {
			fmt.Fprintln(out, "atoll", version)
			return 0
		}},
	}
}

func main() {
	// A task's start gate is this binary re-executed: it joins the task's
	// cgroup, then execs the task (internal/startgate).
	startgate.Main()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		return 2
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "atoll: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: atoll <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'atoll <command> -h' for the flags of one command.")
}

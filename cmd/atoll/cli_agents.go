package main

// atoll agents: the agents of the cluster, from the Mesos-style /master/state.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/atollhq/atoll/client"
)

// runAgents runs "atoll agents"; args are what follows "agents".
func runAgents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "list" { // "atoll agents list" reads naturally too
		args = args[1:]
	}
	fs, cf := newFlagSet("atoll agents", "atoll agents [--json] [--master URL]", stderr)
	asJSON := fs.Bool("json", false, "print the agents as JSON (the \"slaves\" of /master/state)")
	if _, code, ok := parseCommand(fs, args, 0, 0); !ok {
		return code
	}
	st, err := newClient(cf).State(ctx)
	if err != nil {
		return cliFail(stderr, fs.Name(), err)
	}
	agents := st.Slaves
	sort.Slice(agents, func(i, j int) bool {
		if agents[i].Hostname != agents[j].Hostname {
			return agents[i].Hostname < agents[j].Hostname
		}
		return agents[i].ID < agents[j].ID
	})
	if *asJSON {
		raws := make([]json.RawMessage, len(agents))
		for i := range agents {
			raws[i] = agents[i].Raw
		}
		if err := printJSON(stdout, rawArray(raws)); err != nil {
			return cliFail(stderr, fs.Name(), err)
		}
		return cliExitOK
	}
	writeAgentTable(stdout, agents)
	return cliExitOK
}

func writeAgentTable(w io.Writer, agents []client.Slave) {
	tw := newTabTable(w)
	// CPUS and MEM are allocated/offered; USE is what the tasks use,
	// from their cgroups ("-" until the agent reported it).
	tableRow(tw, "ID", "HOSTNAME", "IP", "STATE", "CPUS", "CPU USE", "MEM", "MEM USE", "PORTS", "ATTRIBUTES")
	for i := range agents {
		a := &agents[i]
		state := "inactive"
		if a.Active {
			state = "active"
		}
		cpuUse, memUse := "-", "-"
		if a.Usage != nil {
			cpuUse, memUse = fmt.Sprintf("%.2f", a.Usage.Cpus), fmt.Sprintf("%.1f", a.Usage.Mem)
		}
		tableRow(tw, a.ID, a.Hostname, a.IP(), state,
			fmtNum(a.UsedResources.Cpus)+"/"+fmtNum(a.Resources.Cpus), cpuUse,
			fmtNum(a.UsedResources.Mem)+"/"+fmtNum(a.Resources.Mem), memUse,
			fmtPortRanges(a.Resources.Ports),
			fmtAttributes(a.Attributes))
	}
	tw.Flush()
}

// portRanges turns Mesos's "[31000-32000, 33000-33100]" into
// "31000-32000,33000-33100".
func fmtPortRanges(s string) string {
	s = strings.Trim(strings.TrimSpace(s), "[]")
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ",")
}

// attributes formats Mesos attributes (text or scalar values) as sorted
// key=value pairs.
func fmtAttributes(m map[string]any) string {
	s := make(map[string]string, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			s[k] = v
		case float64:
			s[k] = fmtNum(v)
		default:
			b, _ := json.Marshal(v)
			s[k] = string(b)
		}
	}
	return fmtKV(s, ",")
}

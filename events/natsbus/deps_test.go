package natsbus_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/atollhq/atoll/"

// The split this package exists for: code that only computes on the
// cluster's state, or serves it, links no NATS client. A package here that
// imports natsbus (or nats.go directly) fails this test, with the import
// chain that brought NATS in.
func TestPureCoreLinksNoNATS(t *testing.T) {
	forbidden := []string{"github.com/nats-io/"}
	// Not even a package under master/ or agent/: the API client the
	// CLI and the LB's Marathon source share lives in client/.
	sidecar := append(forbidden, module+"master", module+"master/", module+"agent", module+"agent/")
	pure := map[string][]string{
		// The model, the state and the follower: everything may use
		// events, so whatever it links, everything links.
		module + "events": append(forbidden, module+"master", module+"agent", module+"dnsserver", module+"lbsync"),
		// The scheduler computes placements: no I/O at all.
		module + "master/scheduler": forbidden,
		// The sidecars' halves take an events.Source or a Handler's
		// calls; the NATS wiring is cmd/atoll's. They never import
		// the master or the agent either.
		module + "dnsserver": sidecar,
		module + "lbsync":    sidecar,
		module + "templates": sidecar,
	}
	natsbus := module + "events/natsbus"
	roots := []string{natsbus}
	for p := range pure {
		roots = append(roots, p)
	}
	graph := goListDeps(t, roots)
	for root, bad := range pure {
		if _, ok := graph[root]; !ok {
			t.Errorf("go list did not list %s", root)
			continue
		}
		for _, chain := range importChains(graph, root, bad) {
			t.Errorf("%s links %s: %s", root, chain[len(chain)-1], strings.Join(chain, " -> "))
		}
	}
	// The check can fail: natsbus itself links nats.go.
	if len(importChains(graph, natsbus, forbidden)) == 0 {
		t.Errorf("%s links no nats.go by this test's reckoning: the check above proves nothing", natsbus)
	}
}

// goListDeps is the import graph (package -> its imports) of roots and
// everything they link, as `go list -deps` sees it for this platform.
func goListDeps(t *testing.T, roots []string) map[string][]string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(goBin, append([]string{"list", "-deps", "-json=ImportPath,Imports"}, roots...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list -deps %v: %v\n%s", roots, err, stderr.String())
	}
	graph := map[string][]string{}
	dec := json.NewDecoder(&stdout)
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list -json: %v", err)
		}
		graph[p.ImportPath] = p.Imports
	}
	return graph
}

// importChains finds, for each forbidden package that root links, one
// shortest import chain from root to it. A forbidden path ending in "/"
// is a prefix; any other is one package (master, not master/scheduler).
func importChains(graph map[string][]string, root string, forbidden []string) [][]string {
	isBad := func(p string) bool {
		for _, f := range forbidden {
			if p == f || strings.HasSuffix(f, "/") && strings.HasPrefix(p, f) {
				return true
			}
		}
		return false
	}
	from := map[string]string{root: ""}
	queue := []string{root}
	var chains [][]string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, q := range graph[p] {
			if _, seen := from[q]; seen {
				continue
			}
			from[q] = p
			if isBad(q) {
				var chain []string
				for c := q; c != ""; c = from[c] {
					chain = append([]string{c}, chain...)
				}
				chains = append(chains, chain)
				continue // its own imports are its problem
			}
			queue = append(queue, q)
		}
	}
	return chains
}

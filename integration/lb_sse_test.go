package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lbNormalized is n's haproxy.cfg with only what must differ between two
// lbs of one node made equal: its own folder (sockets, maps), the stats
// bind, the bind address of its frontends and its HTTP frontend port.
// Everything else — backends, server slots with their addresses, order —
// is left as it is.
func (n *lbNode) lbNormalized() (string, error) {
	data, err := os.ReadFile(n.configPath())
	if err != nil {
		return "", err
	}
	lines := lbLines(strings.ReplaceAll(string(data), n.dir, "<DIR>"))
	bind := regexp.MustCompile(`^(\s*bind )(\S+):(\d+)(.*)$`)
	for i, l := range lines {
		m := bind.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		switch addr, port := m[2], m[3]; {
		case addr+":"+port == n.statsAddr:
			lines[i] = m[1] + "<STATS>" + m[4]
		case addr == n.bindAddr && port == strconv.Itoa(n.httpPort):
			lines[i] = m[1] + "<BIND>:<HTTP>" + m[4]
		case addr == n.bindAddr:
			lines[i] = m[1] + "<BIND>:" + port + m[4]
		}
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// lbMaps is n's host and path maps.
func (n *lbNode) lbMaps() (string, error) {
	var b strings.Builder
	for _, name := range []string{"hosts.map", "paths.map"} {
		data, err := os.ReadFile(filepath.Join(n.dir, name))
		if err != nil && !os.IsNotExist(err) {
			return "", err
		}
		fmt.Fprintf(&b, "== %s\n%s", name, data)
	}
	return b.String(), nil
}

// lbDiff is a unified-style diff of two texts: the lines each side has
// that the other lacks, with a line of context, as -/+ hunks.
func lbDiff(a, b string) string {
	x, y := lbLines(a), lbLines(b)
	// Longest common subsequence, small inputs only.
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte
		line string
	}
	var ops []op
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			ops = append(ops, op{' ', x[i]})
			i++
			j++
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			ops = append(ops, op{'+', y[j]})
			j++
		default:
			ops = append(ops, op{'-', x[i]})
			i++
		}
	}
	show := make([]bool, len(ops))
	for k, o := range ops {
		if o.kind != ' ' {
			for c := max(k-1, 0); c <= min(k+1, len(ops)-1); c++ {
				show[c] = true
			}
		}
	}
	var out strings.Builder
	for k, o := range ops {
		if !show[k] {
			continue
		}
		if k == 0 || !show[k-1] {
			fmt.Fprintf(&out, "@@ line %d\n", k+1)
		}
		fmt.Fprintf(&out, "%c%s\n", o.kind, o.line)
	}
	return out.String()
}

// lbServes reports whether config text has a live (not disabled, not
// draining) server line for each task's address.
func lbServes(cfg string, ts []apiTask) (bool, string) {
	for _, task := range ts {
		if len(task.IPAddresses) == 0 || len(task.Ports) == 0 {
			return false, "task " + task.ID + " has no address"
		}
		for i, port := range task.Ports {
			addr := fmt.Sprintf(" %s:%d", task.IPAddresses[0].IPAddress, port)
			found := false
			for _, l := range lbLines(cfg) {
				if strings.HasPrefix(strings.TrimSpace(l), "server ") && strings.Contains(l+" ", addr+" ") &&
					!strings.Contains(l, " disabled") && !strings.Contains(l, " weight 0") {
					found = true
					break
				}
			}
			if !found {
				return false, fmt.Sprintf("no live server for task %s port %d (%s)", task.ID, i, addr)
			}
		}
	}
	return true, ""
}

// lbSlotless is config text with the slot number of every server line
// taken out and each backend's server lines sorted: what is left is which
// servers (address, port, options, draining or free) a backend has and
// how many slots, but not which slot holds which task.
func lbSlotless(cfg string) string {
	server := regexp.MustCompile(`^(\s*server \S+)-\d+( .*)$`)
	lines := lbLines(cfg)
	var out, block []string
	flush := func() {
		sort.Strings(block)
		out = append(out, block...)
		block = block[:0]
	}
	for _, l := range lines {
		if m := server.FindStringSubmatch(l); m != nil {
			block = append(block, m[1]+"-*"+m[2])
			continue
		}
		flush()
		out = append(out, l)
	}
	flush()
	return strings.Join(out, "\n") + "\n"
}

// TestLBSSEMatchesNATS: `atoll lb --sse <master>` renders the same HAProxy
// config and maps as `atoll lb --nats` beside it, for an app with a vhost
// and one with two service ports, while they are deployed and scaled.
//
// Which slot a task takes depends on the order its lb saw tasks start
// (slots are sticky, new tasks take the lowest free one): NATS delivers
// every event, the SSE source refetches the state at most every 200 ms,
// so when several tasks start at once the two may number them
// differently. While tasks start one at a time the configs must be
// byte-identical (slots included); after several start at once they must
// be identical except for which slot holds which task.
func TestLBSSEMatchesNATS(t *testing.T) {
	requireHAProxy(t)
	c := startCluster(t, clusterOptions{agents: 3})
	viaNATS := lbStart(c, lbNodeOptions{name: "lb-nats", bindAddr: "127.0.0.1"})
	viaSSE := lbStart(c, lbNodeOptions{name: "lb-sse", bindAddr: "127.0.2.1", sse: c.api})

	// Service ports free on both bind addresses.
	ports := make([]int, 0, 3)
	for len(ports) < 3 {
		p := lbFreePort(t, viaNATS.bindAddr)
		if ln, err := lbTryListen(viaSSE.bindAddr, p); err == nil {
			ln.Close()
			ports = append(ports, p)
		}
	}
	const web, multi = "/it/sse/web", "/it/sse/multi"
	instances := map[string]int{web: 1, multi: 1}
	c.mustDo("POST", "/v2/apps", lbServiceApp(web, 1, map[string]string{"HAPROXY_0_VHOST": "web.example"}, ports[0]), 201, nil)
	c.mustDo("POST", "/v2/apps", lbServiceApp(multi, 1, nil, ports[1], ports[2]), 201, nil)

	// same waits until both lbs serve every task of both apps with equal
	// maps and equal configs (slotless: up to which slot holds which task).
	same := func(step string, slotless bool) {
		t.Helper()
		var all []apiTask
		for _, id := range []string{web, multi} {
			all = append(all, c.lbWaitSteady(id, instances[id], 30*time.Second)...)
		}
		var strictDiff string
		c.waitFor(20*time.Second, step+": both lbs to serve every task with the same config and maps", func() (bool, string) {
			var cfgs, maps [2]string
			for i, lb := range []*lbNode{viaNATS, viaSSE} {
				var err error
				if cfgs[i], err = lb.lbNormalized(); err != nil {
					return false, err.Error()
				}
				if ok, why := lbServes(cfgs[i], all); !ok {
					return false, lb.name + ": " + why
				}
				if maps[i], err = lb.lbMaps(); err != nil {
					return false, err.Error()
				}
			}
			if maps[0] != maps[1] {
				return false, "maps differ (- nats, + sse):\n" + lbDiff(maps[0], maps[1])
			}
			strictDiff = ""
			if cfgs[0] != cfgs[1] {
				strictDiff = lbDiff(cfgs[0], cfgs[1])
				if !slotless || lbSlotless(cfgs[0]) != lbSlotless(cfgs[1]) {
					return false, "haproxy.cfg differs (- nats, + sse):\n" + strictDiff
				}
			}
			return true, ""
		})
		if strictDiff != "" {
			t.Logf("%s: the configs differ only in which slot holds which task (- nats, + sse):\n%s", step, strictDiff)
		}
		for _, lb := range []*lbNode{viaNATS, viaSSE} {
			maps, _ := lb.lbMaps()
			if !strings.Contains(maps, "web.example it_sse_web_"+strconv.Itoa(ports[0])+"\n") {
				t.Fatalf("%s: the vhost is not in the maps:\n%s", lb.name, maps)
			}
		}
		// And both serve the apps (echo listens on its first port only).
		for _, lb := range []*lbNode{viaNATS, viaSSE} {
			c.lbWaitServed(lb.front(lb.httpPort), "web.example", web, 10*time.Second)
			c.lbWaitServed(lb.front(ports[0]), "", web, 10*time.Second)
			c.lbWaitServed(lb.front(ports[1]), "", multi, 10*time.Second)
		}
	}
	scale := func(id string, n int) {
		t.Helper()
		c.mustDo("PUT", "/v2/apps"+id, map[string]any{"instances": n}, 200, nil)
		instances[id] = n
	}
	same("after deploying", false)
	// One task at a time: the same slots.
	for _, step := range []struct {
		id string
		n  int
	}{{multi, 2}, {multi, 3}, {web, 2}} {
		scale(step.id, step.n)
		same(fmt.Sprintf("after scaling %s to %d", step.id, step.n), false)
	}
	// Several tasks at once, both ways.
	scale(multi, 6)
	scale(web, 1)
	same("after scaling multi to 6 and web to 1", true)
	scale(multi, 2)
	scale(web, 3)
	same("after scaling multi to 2 and web to 3", true)
}

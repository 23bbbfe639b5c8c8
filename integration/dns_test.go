package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/atollhq/atoll/internal/natsauth"
)

// TestDNS runs `atoll dev` with its DNS sidecar, deploys apps through the
// API and checks every name family with the real dig, against an upstream
// resolver started here. One dev cluster serves all subtests: starting one
// is the slow part, and the subtests run in the order the issue lists.
func TestDNS(t *testing.T) {
	requireDig(t)
	up := startUpstream(t)
	hole := startBlackHole(t)
	// The black hole comes first: forwarding must fall over to the
	// upstream after --forward-timeout.
	d := startDevDNS(t, "--agents", "5", "--resolvers", hole.addr+","+up.addr,
		"--forward-timeout", "300ms", "--recursion-cidrs", "127.0.0.1/32")

	// Forwarding first: no other query may have taught the forwarder which
	// resolver answers.
	t.Run("forwarding falls over to the next resolver", func(t *testing.T) {
		r := d.dig.query("example.test", "A")
		if r.Status != "NOERROR" || !slices.Equal(data(records(r.Answer, "A")), []string{"198.18.0.1"}) {
			t.Fatalf("example.test A: %s %v\n%s", r.Status, r.Answer, r.Raw)
		}
		if hole.packets.Load() == 0 || up.queries.Load() == 0 {
			t.Fatalf("black hole got %d packets, upstream %d queries; want both > 0", hole.packets.Load(), up.queries.Load())
		}
		r = d.dig.query("missing.test", "A")
		if r.Status != "NXDOMAIN" {
			t.Fatalf("missing.test: status %s, want the upstream's NXDOMAIN\n%s", r.Status, r.Raw)
		}
	})

	t.Run("REFUSED outside recursion-cidrs, cluster names still answered", func(t *testing.T) {
		r := d.dig.query("example.test", "A", "-b", "127.0.0.5")
		if r.Status != "REFUSED" || len(r.Answer) != 0 {
			t.Fatalf("example.test from 127.0.0.5: %s %v, want REFUSED\n%s", r.Status, r.Answer, r.Raw)
		}
		r = d.dig.query("echo.demo.marathon.mesos", "A", "-b", "127.0.0.5")
		if r.Status != "NOERROR" || len(records(r.Answer, "A")) == 0 {
			t.Fatalf("echo.demo.marathon.mesos from 127.0.0.5: %s %v\n%s", r.Status, r.Answer, r.Raw)
		}
	})

	d.mustDo("POST", "/v2/apps", map[string]any{
		"id": "/it/dns", "cmd": "atoll echo", "instances": 3, "cpus": 0.1, "mem": 16,
		"portDefinitions": []map[string]any{{"port": 0, "name": "http"}, {"port": 0, "name": "admin"}},
		"constraints":     [][]string{{"hostname", "UNIQUE"}},
		// A killed task stays gone (no relaunch within the test), so its
		// address leaving DNS is observable.
		"backoffSeconds": 300, "maxLaunchDelaySeconds": 300,
	}, 201, nil)
	ts := d.waitRunning("/it/dns", 3, 30*time.Second)
	d.waitFor(10*time.Second, "dns.it's 3 addresses in DNS", func() (bool, string) {
		r, err := d.dig.try("dns.it.marathon.mesos", "A")
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(data(r.Answer), taskIPs(ts)), fmt.Sprint(r.Answer)
	})

	t.Run("task A, SRV and slave names", func(t *testing.T) {
		r := d.dig.query("dns.it.marathon.mesos", "A")
		if got, want := data(records(r.Answer, "A")), taskIPs(ts); !slices.Equal(got, want) || !r.flag("aa") {
			t.Fatalf("A: %v (flags %v), want %v\n%s", got, r.Flags, want, r.Raw)
		}
		d.checkSRV(t, "_dns.it._tcp.marathon.mesos", ts)
		r = d.dig.query("dns.it.marathon.slave.mesos", "A")
		if got, want := data(records(r.Answer, "A")), taskIPs(ts); !slices.Equal(got, want) {
			t.Fatalf("slave A: %v, want the agents' %v\n%s", got, want, r.Raw)
		}
	})

	t.Run("Mesos-DNS's names: dashed, canonical, named-port, udp and slave SRV", func(t *testing.T) {
		// Mesos-DNS makes the task name one label ("dns.it" -> "dns-it")
		// and serves the same families under it.
		for _, name := range []string{"dns-it.marathon.mesos", "dns-it.marathon.slave.mesos"} {
			r := d.dig.query(name, "A")
			if got, want := data(records(r.Answer, "A")), taskIPs(ts); !slices.Equal(got, want) {
				t.Errorf("%s A: %v, want %v\n%s", name, got, want, r.Raw)
			}
		}
		for _, name := range []string{
			"_dns-it._tcp.marathon.mesos",
			"_http._dns.it._tcp.marathon.mesos", "_http._dns-it._tcp.marathon.mesos",
			"_admin._dns.it._tcp.marathon.mesos",
			"_dns.it._tcp.marathon.slave.mesos", "_dns-it._udp.marathon.slave.mesos",
		} {
			want := ts
			if strings.HasPrefix(name, "_http.") || strings.HasPrefix(name, "_admin.") {
				// One port each: the task's first or second.
				i := 0
				if strings.HasPrefix(name, "_admin.") {
					i = 1
				}
				want = nil
				for _, task := range ts {
					task.Ports = task.Ports[i : i+1]
					want = append(want, task)
				}
			}
			d.checkSRV(t, name, want)
		}
		// A tcp app has no _udp SRV in the framework's own family.
		if r := d.dig.query("_dns.it._udp.marathon.mesos", "SRV"); r.Status != "NXDOMAIN" {
			t.Errorf("_dns.it._udp.marathon.mesos: %s, want NXDOMAIN\n%s", r.Status, r.Raw)
		}
		// The canonical names answer on their own, in both families.
		r := d.dig.query("_dns-it._tcp.marathon.mesos", "SRV")
		for _, rr := range records(r.Answer, "SRV") {
			for _, name := range []string{rr.Data[3], strings.TrimSuffix(rr.Data[3], "marathon.mesos.") + "marathon.slave.mesos."} {
				if a := d.dig.query(name, "A"); len(records(a.Answer, "A")) != 1 {
					t.Errorf("%s A: %v, want the task's address\n%s", name, a.Answer, a.Raw)
				}
			}
		}
	})

	t.Run("PTR of a task address", func(t *testing.T) {
		// Tasks here use their agent's address, which points back to the
		// agent's own name (<hostname>.slave.mesos), and that name to the
		// address: a round trip.
		ip := ts[0].IPAddresses[0].IPAddress
		r := d.dig.reverse(ip)
		ptr := data(records(r.Answer, "PTR"))
		if r.Status != "NOERROR" || len(ptr) != 1 || !strings.HasSuffix(ptr[0], ".slave.mesos.") {
			t.Fatalf("PTR of %s: %s %v, want one agent name\n%s", ip, r.Status, r.Answer, r.Raw)
		}
		r = d.dig.query(ptr[0], "A")
		if got := data(records(r.Answer, "A")); !slices.Equal(got, []string{ip}) {
			t.Fatalf("%s A: %v, want %s\n%s", ptr[0], got, ip, r.Raw)
		}
	})

	t.Run("leader, master, slave, ns1, SOA and NS", func(t *testing.T) {
		for name, want := range map[string][]string{
			"leader.mesos": {"127.0.0.1"},
			"master.mesos": {"127.0.0.1"},
			"slave.mesos":  {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"},
		} {
			r := d.dig.query(name, "A")
			if got := data(records(r.Answer, "A")); !slices.Equal(got, want) {
				t.Errorf("%s A: %v, want %v\n%s", name, got, want, r.Raw)
			}
		}
		r := d.dig.query("_leader._tcp.mesos", "SRV")
		if srv := records(r.Answer, "SRV"); len(srv) != 1 || srv[0].Data[2] != d.apiPort {
			t.Errorf("_leader._tcp.mesos SRV: %v, want one with port %s\n%s", srv, d.apiPort, r.Raw)
		}
		// Mesos-DNS's framework and agent SRV records: the framework at the
		// leader's API port, the agents at their pids' port in
		// /master/state, one record for all five.
		r = d.dig.query("_framework._tcp.marathon.mesos", "SRV")
		if srv := records(r.Answer, "SRV"); len(srv) != 1 || srv[0].Data[2] != d.apiPort || srv[0].Data[3] != "marathon.mesos." {
			t.Errorf("_framework._tcp.marathon.mesos SRV: %v, want marathon.mesos. at port %s\n%s", srv, d.apiPort, r.Raw)
		}
		r = d.dig.query("_slave._tcp.mesos", "SRV")
		if srv := records(r.Answer, "SRV"); len(srv) != 1 || srv[0].Data[2] != "5051" || srv[0].Data[3] != "slave.mesos." {
			t.Errorf("_slave._tcp.mesos SRV: %v, want one, slave.mesos. at port 5051\n%s", srv, r.Raw)
		}
		r = d.dig.query("ns1.mesos", "A")
		if len(records(r.Answer, "A")) == 0 {
			t.Errorf("ns1.mesos has no A record\n%s", r.Raw)
		}
		r = d.dig.query("mesos", "SOA")
		if soa := records(r.Answer, "SOA"); r.Status != "NOERROR" || len(soa) != 1 || soa[0].Name != "mesos." || !r.flag("aa") {
			t.Errorf("SOA at the apex: %s %v, want one SOA in ANSWER\n%s", r.Status, r.Answer, r.Raw)
		}
		r = d.dig.query("mesos", "NS")
		if ns := records(r.Answer, "NS"); len(ns) == 0 || !slices.Contains(data(ns), "ns1.mesos.") {
			t.Errorf("NS at the apex: %v, want ns1.mesos. in ANSWER\n%s", r.Answer, r.Raw)
		}
		r = d.dig.query("marathon.mesos", "SOA")
		if len(records(r.Answer, "SOA")) != 0 {
			t.Errorf("SOA below the apex answered: %v", r.Answer)
		}
	})

	t.Run("NXDOMAIN and NODATA carry the SOA", func(t *testing.T) {
		for _, q := range []struct{ name, qtype, status string }{
			{"nope.marathon.mesos", "A", "NXDOMAIN"},
			{"_nope._tcp.marathon.mesos", "SRV", "NXDOMAIN"},
			{"dns.it.marathon.mesos", "AAAA", "NOERROR"},
			{"mesos", "MX", "NOERROR"},
		} {
			r := d.dig.query(q.name, q.qtype)
			soa := records(r.Authority, "SOA")
			if r.Status != q.status || len(r.Answer) != 0 || len(soa) != 1 || soa[0].Name != "mesos." {
				t.Errorf("%s %s: %s, answer %v, authority %v; want %s, no answer, the SOA\n%s",
					q.name, q.qtype, r.Status, r.Answer, r.Authority, q.status, r.Raw)
			}
		}
	})

	t.Run("letter case kept", func(t *testing.T) {
		const name = "EcHo.DeMo.MaRaThOn.MeSoS."
		r := d.dig.query(name, "A")
		if len(r.Question) != 1 || !strings.HasPrefix(r.Question[0], name) {
			t.Errorf("question %q, want %s", r.Question, name)
		}
		if len(r.Answer) != 3 {
			t.Fatalf("%d answers, want the demo's 3\n%s", len(r.Answer), r.Raw)
		}
		for _, rr := range r.Answer {
			if rr.Name != name {
				t.Errorf("answer name %s, want %s", rr.Name, name)
			}
		}
	})

	t.Run("HTTP API", func(t *testing.T) {
		var hosts []struct{ Host, IP string }
		d.getDNSHTTP(t, "/v1/hosts/DNS.IT.marathon.mesos", 200, &hosts)
		var ips []string
		for _, h := range hosts {
			ips = append(ips, h.IP)
		}
		slices.Sort(ips)
		if !slices.Equal(ips, taskIPs(ts)) {
			t.Errorf("/v1/hosts: %v, want %v", hosts, taskIPs(ts))
		}
		var services []struct{ Service, Host, IP, Port string }
		d.getDNSHTTP(t, "/v1/services/_dns.it._tcp.marathon.mesos.", 200, &services)
		if len(services) != 6 {
			t.Errorf("/v1/services: %d rows, want 6: %v", len(services), services)
		}
		d.getDNSHTTP(t, "/v1/hosts/nope.marathon.mesos", 404, nil)
		metrics := d.getDNSHTTP(t, "/metrics", 200, nil)
		for _, want := range []string{"atoll_dns_synced 1", "atoll_dns_resyncs_total 0", `atoll_dns_queries_total{rcode="NXDOMAIN"`} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})

	t.Run("every name /v1/enumerate lists answers exactly its records", func(t *testing.T) {
		if tasks, names := d.enumerateMatchesDig(t); tasks < 6 || names < 40 {
			t.Fatalf("/v1/enumerate: %d tasks, %d names and types; want the demo's and /it/dns's", tasks, names)
		}
	})

	t.Run("scaling with the CLI: DNS is ahead of the API", func(t *testing.T) {
		out, err := exec.Command(atollBin, "app", "scale", "/it/dns", "5", "--master", d.api, "--timeout", "60s").CombinedOutput()
		if err != nil {
			t.Fatalf("atoll app scale: %v\n%s", err, out)
		}
		// Right away, no waiting: the deployment is done only after the
		// events that put the tasks in DNS were published.
		a := d.dig.query("dns.it.marathon.mesos", "A")
		srv := d.dig.query("_dns.it._tcp.marathon.mesos", "SRV")
		ts = d.tasks("/it/dns")
		if got := data(records(a.Answer, "A")); len(got) != 5 || !slices.Equal(got, taskIPs(ts)) {
			t.Errorf("after scaling to 5: A %v, want the 5 tasks' %v\n%s", got, taskIPs(ts), a.Raw)
		}
		if n := len(records(srv.Answer, "SRV")); n != 10 {
			t.Errorf("after scaling to 5: %d SRV records, want 10\n%s", n, srv.Raw)
		}
		d.checkSRV(t, "_dns.it._tcp.marathon.mesos", ts)
		// Every family, not only the app's A and SRV: the new tasks'
		// canonical, slave and named-port names answer as listed.
		if tasks, _ := d.enumerateMatchesDig(t); tasks != 3+5 {
			t.Errorf("after scaling to 5: /v1/enumerate lists %d tasks, want 8 (the demo's 3 and 5)", tasks)
		}
	})

	t.Run("a killed task leaves DNS", func(t *testing.T) {
		pids := taskPIDs(d.dir, "/it/dns")
		if len(pids) == 0 {
			t.Fatal("no task process of /it/dns")
		}
		env := processEnv(pids[0])
		ip, ports := env["HOST"], strings.Split(env["PORTS"], ",")
		killedNames := d.enumeratedNames(t, env["MESOS_TASK_ID"])
		if len(killedNames) == 0 {
			t.Fatalf("/v1/enumerate lists no name of task %s", env["MESOS_TASK_ID"])
		}
		if err := syscall.Kill(-pids[0], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		d.waitFor(10*time.Second, fmt.Sprintf("%s and ports %v to leave DNS", ip, ports), func() (bool, string) {
			a, err := d.dig.try("dns.it.marathon.mesos", "A")
			if err != nil {
				return false, err.Error()
			}
			srv, err := d.dig.try("_dns.it._tcp.marathon.mesos", "SRV")
			if err != nil {
				return false, err.Error()
			}
			gone := !slices.Contains(data(a.Answer), ip)
			for _, rr := range srv.Answer {
				gone = gone && !slices.Contains(ports, rr.Data[2])
			}
			return gone && len(a.Answer) == 4 && len(srv.Answer) == 8, fmt.Sprintf("A %v, %d SRV", data(a.Answer), len(srv.Answer))
		})
		// Its own names (canonical, in every family) are gone with it,
		// and what the enumeration lists still answers exactly.
		own := 0
		for _, name := range killedNames {
			if !strings.Contains(name, "-s") {
				continue // the app's names and SRV, shared with its other tasks
			}
			own++
			if r := d.dig.query(name, "A"); r.Status != "NXDOMAIN" || len(records(r.Answer, "A")) > 0 {
				t.Errorf("%s of the killed task: %s %v, want NXDOMAIN", name, r.Status, data(records(r.Answer, "A")))
			}
		}
		if own < 4 {
			t.Errorf("the killed task had %d canonical names in /v1/enumerate (%v), want at least 4 (%s-<hash>-s<N> in both families, both forms)", own, killedNames, "dns-it")
		}
		d.enumerateMatchesDig(t)
	})

	// Each SRV record is 48 bytes here: its target, the task's canonical
	// name (b.it-<hash>-s<N>.marathon.mesos.), is never compressed
	// (RFC 2782), so 80 fit in 4096 bytes and 100 would not.
	t.Run("80 SRV records: whole over UDP with EDNS0, TC without, whole over TCP", func(t *testing.T) {
		d.mustDo("POST", "/v2/apps", map[string]any{
			"id": "/it/b", "cmd": "sleep 3600", "instances": 40, "cpus": 0.01, "mem": 4,
			"portDefinitions": []map[string]any{{"port": 0}, {"port": 0}},
		}, 201, nil)
		d.waitRunning("/it/b", 40, 90*time.Second)
		const name = "_b.it._tcp.marathon.mesos"
		d.waitFor(10*time.Second, "80 SRV records", func() (bool, string) {
			r, err := d.dig.try(name, "SRV", "+tcp")
			if err != nil {
				return false, err.Error()
			}
			return len(r.Answer) == 80, fmt.Sprintf("%d records", len(r.Answer))
		})
		r := d.dig.query(name, "SRV", "+bufsize=4096", "+stats", "+ignore")
		if len(records(r.Answer, "SRV")) != 80 || r.flag("tc") || !r.EDNS || r.Size > 4096 {
			t.Errorf("UDP, bufsize 4096: %d SRV, flags %v, EDNS %v, %d bytes; want 80, no tc, an OPT, <= 4096", len(records(r.Answer, "SRV")), r.Flags, r.EDNS, r.Size)
		}
		r = d.dig.query(name, "SRV", "+noedns", "+stats", "+ignore")
		if !r.flag("tc") || r.Size > 512 || r.EDNS {
			t.Errorf("UDP without EDNS0: flags %v, %d bytes, EDNS %v; want tc, <= 512, no OPT", r.Flags, r.Size, r.EDNS)
		}
		r = d.dig.query(name, "SRV", "+tcp")
		if len(records(r.Answer, "SRV")) != 80 || r.flag("tc") {
			t.Errorf("TCP: %d SRV, flags %v; want 80, no tc", len(records(r.Answer, "SRV")), r.Flags)
		}
	})
}

// TestDNSCommand runs `atoll dns` as a node runs it, a process of its own
// beside a master and an agent, and stops it as systemd would.
func TestDNSCommand(t *testing.T) {
	requireDig(t)
	c := startCluster(t, clusterOptions{agents: 1})
	addr := freeDNSAddr(t)
	p := c.start("dns", append(append([]string{"dns"}, c.nats.args(natsauth.RoleSidecar, "dns-node")...), "--dns", addr, "--http", "",
		"--resolvers", "127.0.0.1:1", "--log-level", "debug")...)
	t.Cleanup(func() {
		c.signal(p, syscall.SIGKILL) // a no-op when the test stopped it
		if t.Failed() {
			data, _ := os.ReadFile(p.log)
			t.Logf("atoll dns log:\n%s", tail(data, 4096))
		}
	})
	host, port, _ := net.SplitHostPort(addr)
	dig := digger{t: t, host: host, port: port}

	c.mustDo("POST", "/v2/apps", echoApp("/it/cmd", 1), 201, nil)
	c.waitRunning("/it/cmd", 1, 30*time.Second)
	c.waitFor(10*time.Second, "cmd.it.marathon.mesos in DNS", func() (bool, string) {
		r, err := dig.try("cmd.it.marathon.mesos", "A")
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(data(r.Answer), []string{agentIP(1)}), r.Status + " " + fmt.Sprint(r.Answer)
	})
	if r := dig.query("leader.mesos", "A"); !slices.Equal(data(r.Answer), []string{"127.0.0.1"}) {
		t.Errorf("leader.mesos: %v", r.Answer)
	}

	c.signal(p, syscall.SIGTERM)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("atoll dns exited with %d after SIGTERM, want 0", code)
	}
}

// devDNS is an `atoll dev` process with its DNS sidecar.
type devDNS struct {
	*cluster
	dig     digger
	dnsHTTP string
	apiPort string
}

// startDevDNS starts `atoll dev --demo` on free ports with extra flags, and
// waits until the demo app's tasks are in DNS.
func startDevDNS(t *testing.T, extra ...string) *devDNS {
	t.Helper()
	dir := passableTempDir(t)
	httpAddr, dnsAddr, dnsHTTP := freeAddr(t), freeDNSAddr(t), freeAddr(t)
	exited := runDev(t, dir, append([]string{"--demo", "--http", httpAddr, "--nats", freeAddr(t), "--dns", dnsAddr,
		"--dns-http", dnsHTTP, "--lb=false"}, extra...)...)
	host, port, _ := net.SplitHostPort(dnsAddr)
	_, apiPort, _ := net.SplitHostPort(httpAddr)
	d := &devDNS{
		cluster: &cluster{t: t, dir: dir, api: devAPI(t, filepath.Join(dir, "data"), httpAddr)},
		dig:     digger{t: t, host: host, port: port}, dnsHTTP: dnsHTTP, apiPort: apiPort,
	}
	d.waitFor(30*time.Second, "the demo app's 3 tasks in DNS", func() (bool, string) {
		select {
		case <-exited:
			t.Fatal("atoll dev exited")
		default:
		}
		r, err := d.dig.try("echo.demo.marathon.mesos", "A")
		if err != nil {
			return false, err.Error()
		}
		return len(r.Answer) == 3, r.Status + " " + fmt.Sprint(r.Answer)
	})
	return d
}

// canonicalTarget is Mesos-DNS's SRV target: the task's canonical name,
// <task>-<5 z-base-32 characters>-s<N> in the framework's family or its
// .slave. one.
var canonicalTarget = regexp.MustCompile(`^[a-z0-9.-]+-[ybndrfg8ejkmcpqxot1uwisza345h769]{5}-s[0-9]+\.marathon\.(slave\.)?mesos\.$`)

// checkSRV checks that name has one SRV record per task port, each of
// weight 1 with a canonical task name as its target, whose address in
// ADDITIONAL is that task's.
func (d *devDNS) checkSRV(t *testing.T, name string, ts []apiTask) {
	t.Helper()
	r := d.dig.query(name, "SRV")
	addrs := map[string][]string{} // target -> addresses
	for _, rr := range records(r.Additional, "A") {
		addrs[rr.Name] = append(addrs[rr.Name], rr.Data[0])
	}
	var got, want []string
	for _, rr := range records(r.Answer, "SRV") {
		target := rr.Data[3]
		if rr.Data[0] != "0" || rr.Data[1] != "1" || !canonicalTarget.MatchString(target) {
			t.Errorf("%s: SRV %v: want priority 0, weight 1, a canonical task name as target", name, rr.Data)
		}
		if len(addrs[target]) != 1 {
			t.Errorf("SRV target %s has addresses %v in ADDITIONAL, want one", target, addrs[target])
		}
		got = append(got, strings.Join(addrs[target], ",")+":"+rr.Data[2])
	}
	for _, task := range ts {
		for _, p := range task.Ports {
			want = append(want, task.IPAddresses[0].IPAddress+":"+strconv.Itoa(p))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s SRV gives %v, want the tasks' %v\n%s", name, got, want, r.Raw)
	}
}

// getDNSHTTP gets a path of the sidecar's HTTP API, checks the status and
// decodes JSON into into (if not nil); it returns the body.
func (d *devDNS) getDNSHTTP(t *testing.T, path string, code int, into any) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + d.dnsHTTP + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %d, want %d: %s", path, resp.StatusCode, code, body)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return string(body)
}

func taskIPs(ts []apiTask) []string {
	var out []string
	for _, t := range ts {
		if t.State == "TASK_RUNNING" && len(t.IPAddresses) > 0 && !slices.Contains(out, t.IPAddresses[0].IPAddress) {
			out = append(out, t.IPAddresses[0].IPAddress)
		}
	}
	slices.Sort(out)
	return out
}

// processEnv reads a process's environment.
func processEnv(pid int) map[string]string {
	env := map[string]string{}
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	for _, kv := range bytes.Split(data, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	return env
}

// freeDNSAddr is a loopback address whose port is free for both UDP and
// TCP, as a DNS server needs.
// upstream is a DNS server for the names outside the cluster: it knows
// example.test. (A 198.18.0.1) and says NXDOMAIN for the rest of test.
type upstream struct {
	addr    string
	queries atomic.Int64
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		u.queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		q := req.Question[0]
		switch {
		case strings.EqualFold(q.Name, "example.test.") && q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.ParseIP("198.18.0.1"),
			})
		case dns.IsSubDomain("test.", strings.ToLower(q.Name)):
			m.Rcode = dns.RcodeNameError
		default:
			m.Rcode = dns.RcodeRefused
		}
		_ = w.WriteMsg(m)
	})
	addr := freeDNSAddr(t)
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	t.Cleanup(func() { _ = udp.Shutdown(); _ = tcp.Shutdown() })
	u.addr = addr
	return u
}

// blackHole is a resolver that reads queries and never answers.
type blackHole struct {
	addr    string
	packets atomic.Int64
}

func startBlackHole(t *testing.T) *blackHole {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{addr: pc.LocalAddr().String()}
	go func() {
		buf := make([]byte, 65535)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return // closed
			}
			b.packets.Add(1)
		}
	}()
	t.Cleanup(func() { pc.Close() })
	return b
}

// runDev starts `atoll dev args...` with its data under dir and its
// output in dir/dev.log. When the test ends it gets Ctrl-C (the agents
// kill their tasks), any task left is killed, and the log's tail is shown
// if the test failed. The channel it returns is closed if the process
// exits.
func runDev(t *testing.T, dir string, args ...string) <-chan struct{} {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, "dev.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(atollBin, append([]string{"dev", "--data-dir", filepath.Join(dir, "data")}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		for _, pid := range taskPIDs(dir, "") {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
		if t.Failed() {
			data, _ := os.ReadFile(out.Name())
			t.Logf("atoll dev output (last 8 KB):\n%s", tail(data, 8192))
		}
		out.Close()
	})
	return exited
}

// dnsEnumeration is Mesos-DNS's /v1/enumerate.
type dnsEnumeration struct {
	Frameworks []struct {
		Tasks []struct {
			Name, ID string
			Records  []struct{ Name, Host, Rtype string }
		}
	}
}

// enumerateMatchesDig checks that every name and type /v1/enumerate lists
// is answered by dig (over TCP, whole) with exactly the records listed,
// and returns how many tasks and names and types it listed. The zone may
// change between the enumeration and the digs (a replacement task comes
// up): it tries again until one enumeration matches, for up to 10 s.
func (d *devDNS) enumerateMatchesDig(t *testing.T) (tasks, names int) {
	t.Helper()
	d.waitFor(10*time.Second, "every name /v1/enumerate lists answered exactly by dig", func() (bool, string) {
		var mismatch string
		tasks, names, mismatch = d.enumerateOnce(t)
		return mismatch == "", mismatch
	})
	return tasks, names
}

func (d *devDNS) enumerateOnce(t *testing.T) (tasks, names int, mismatch string) {
	t.Helper()
	var enum dnsEnumeration
	d.getDNSHTTP(t, "/v1/enumerate", 200, &enum)
	want := map[[2]string][]string{} // name, type -> values
	for _, fw := range enum.Frameworks {
		for _, task := range fw.Tasks {
			tasks++
			for _, r := range task.Records {
				k := [2]string{r.Name, r.Rtype}
				want[k] = append(want[k], r.Host)
			}
		}
	}
	for k, hosts := range want {
		r, err := d.dig.try(k[0], k[1], "+tcp")
		if err != nil {
			return tasks, len(want), err.Error()
		}
		var got []string
		for _, rr := range records(r.Answer, k[1]) {
			if k[1] == "SRV" {
				got = append(got, net.JoinHostPort(rr.Data[3], rr.Data[2]))
			} else {
				got = append(got, rr.Data[0])
			}
		}
		slices.Sort(got)
		slices.Sort(hosts)
		if !slices.Equal(got, hosts) {
			return tasks, len(want), fmt.Sprintf("%s %s: dig %v, /v1/enumerate %v", k[0], k[1], got, hosts)
		}
	}
	return tasks, len(want), ""
}

// enumeratedNames are the names /v1/enumerate lists for one task.
func (d *devDNS) enumeratedNames(t *testing.T, taskID string) []string {
	t.Helper()
	var enum dnsEnumeration
	d.getDNSHTTP(t, "/v1/enumerate", 200, &enum)
	var names []string
	for _, fw := range enum.Frameworks {
		for _, task := range fw.Tasks {
			if task.ID != taskID {
				continue
			}
			for _, r := range task.Records {
				if !slices.Contains(names, r.Name) {
					names = append(names, r.Name)
				}
			}
		}
	}
	return names
}

package dnsserver

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
	"github.com/miekg/dns"
)

// replyStrings is a reply as comparable text: rcode, flags, and each
// section's records sorted (answers rotate), OPT left out.
func replyStrings(t testing.TB, b []byte) string {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("reply does not unpack: %v", err)
	}
	m.Extra = slices.DeleteFunc(m.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
	return fmt.Sprintf("%s aa=%v tc=%v\nanswer %q\nauthority %q\nadditional %q", dns.RcodeToString[m.Rcode],
		m.Authoritative, m.Truncated, rrStrings(m.Answer), rrStrings(m.Ns), rrStrings(m.Extra))
}

// canonicalNames lists every canonical name the zone answers without
// storing it.
func canonicalNames(z *Zone) []string {
	var names []string
	z.apps.each(func(_ string, e *appEntry) {
		z.canonNames(e, func(name string, _ []rec) { names = append(names, name) })
	})
	slices.Sort(names)
	return slices.Compact(names)
}

// nearMisses are names that look like canonical name but are not one:
// another hash, another agent tail, no tail, a tail too many; and the empty
// non-terminals above a dotted one, which exist.
func nearMisses(name string) []string {
	label, rest, _ := strings.Cut(name, ".marathon.")
	i := strings.LastIndexByte(label, '-')
	j := strings.LastIndexByte(label[:i], '-')
	hash := label[j+1 : i]
	other := []byte(hash)
	other[0] = zbase32[(strings.IndexByte(zbase32, other[0])+1)%len(zbase32)]
	out := []string{
		label[:j+1] + string(other) + label[i:] + ".marathon." + rest,
		label + "9.marathon." + rest,
		label[:i] + ".marathon." + rest,
		label + "-s1.marathon." + rest,
		"x" + label + ".marathon." + rest,
	}
	for k := strings.IndexByte(label, '.'); k >= 0; k = strings.IndexByte(label, '.') {
		label = label[k+1:]
		out = append(out, label+".marathon."+rest)
	}
	return out
}

// Every name of a cluster, canonical names included, near misses of them,
// asked for A, AAAA, SRV and ANY: the fast path answers exactly what the
// slow path (dns.Msg and Lookup) answers, NXDOMAIN with the SOA included,
// and a canonical name's answer allocates nothing.
func TestServeCanonicalNamesAsSlowPath(t *testing.T) {
	s := bigState(t, 500)
	// A task with addresses of its own, IPv4 and IPv6, and a dotted name
	// in deep groups.
	commit(t, s, events.PutApp(app("/a/b/deep", "tcp")))
	own := runningTask("a_b_deep.1", "/a/b/deep", "a3-S3", "192.168.7.7", 31000)
	own.IPAddresses = append(own.IPAddresses, events.IPAddress{IPAddress: "fd00::7", Protocol: "IPv6"})
	commit(t, s, events.PutTask(own))
	// A group name so long that the canonical labels are shortened: those
	// names are stored.
	long := "/" + strings.Repeat("g", 60) + "/web"
	commit(t, s, events.PutApp(app(long, "tcp")), events.PutTask(runningTask("long.1", long, "a4-S4", "10.0.0.5", 31000)))
	srv, _ := testServer(t, s)
	w := newPacketWorker(srv)
	z := srv.Zone()
	canon := canonicalNames(z)
	if len(canon) != 4*500+4 {
		t.Fatalf("%d canonical names, want %d", len(canon), 4*500+4)
	}
	// Every SRV target, the shortened ones included, answers A.
	targets, shortened := 0, 0
	for _, rr := range z.Records() {
		if srv, ok := rr.(*dns.SRV); ok && srv.Target != "slave.mesos." && srv.Target != "leader.mesos." && srv.Target != "marathon.mesos." {
			targets++
			if res := z.Lookup(srv.Target, dns.TypeA); len(res.Answer) == 0 {
				t.Fatalf("%s: target %s has no A record", rr, srv.Target)
			}
			if strings.Contains(srv.Target, "ggg") {
				shortened++
				if !strings.Contains(rr.Header().Name, "ggg") || len(strings.Split(srv.Target, ".")[1]) != maxLabel && len(strings.Split(srv.Target, ".")[0]) != maxLabel {
					t.Fatalf("%s: not the long app's shortened target", rr)
				}
			}
		}
	}
	if targets < 6*500 || shortened != 3 {
		t.Fatalf("%d SRV records to tasks, %d to shortened names; want over %d and 3 (the dotted name's; the dashed one is too long for SRV)", targets, shortened, 6*500)
	}
	names := slices.Clone(canon)
	for _, name := range canon {
		names = append(names, nearMisses(name)...)
	}
	z.names.each(func(name string, _ node) { names = append(names, name) })
	out := make([]byte, 0, maxUDPSize)
	counts := map[int]int{}
	for _, name := range names {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeANY} {
			pkt := packQuery(t, name, qtype, 4096)
			fast, _ := w.serve(pkt, out, loopback, false)
			got := replyStrings(t, fast)
			slow, _ := w.slow(pkt, out, loopback, false)
			if want := replyStrings(t, slow); got != want {
				t.Fatalf("%s %s: fast path\n%s\nslow path\n%s", name, dns.TypeToString[qtype], got, want)
			}
			m := new(dns.Msg)
			_ = m.Unpack(fast)
			counts[m.Rcode]++
		}
	}
	if counts[dns.RcodeNameError] == 0 || counts[dns.RcodeSuccess] == 0 {
		t.Errorf("rcodes %v: want answers and NXDOMAIN", counts)
	}
	for _, name := range []string{canon[0], canon[len(canon)-1], strings.ToUpper(canon[1])} {
		pkt := packQuery(t, name, dns.TypeA, 0)
		if n := testing.AllocsPerRun(100, func() { w.serve(pkt, out, loopback, false) }); n != 0 {
			t.Errorf("%s: %v allocations per query", name, n)
		}
	}
}

// The canonical names as a user asks for them: a task's own address at
// <canonical>.<fw>, its agent's under .slave., the dotted form and its
// empty non-terminal, and NXDOMAIN with the SOA for a well-formed name
// with a hash no task has, or the wrong agent.
func TestCanonicalNamesAnswers(t *testing.T) {
	s := fixture(t)
	// An agent with an IPv6 address, and a task that uses it.
	v6 := eventstest.Task("v6.1", "/v6", "a6-S6", events.TaskRunning)
	v6.Ports, v6.IPAddresses = []int{31000}, nil // the agent's address
	commit(t, s, events.PutAgent(agent("a6-S6", "agent-6", "fd00::6")), events.PutApp(app("/v6", "tcp")), events.PutTask(v6))
	srv, _ := testServer(t, s)
	w := newPacketWorker(srv)
	v6Label := canonicalLabel("v6", "v6.1", "a6-S6")
	own := canonicalLabel("own", "own.1", "a1-S1")
	app := canonicalLabel("app01.group", "group_app01.1", "a1-S1")
	hash := taskHash("group_app01.1")
	for _, tc := range []struct {
		name   string
		qtype  uint16
		rcode  int
		answer string // "" for none
	}{
		{own + ".marathon.mesos.", dns.TypeA, dns.RcodeSuccess, "192.168.5.5"},
		{v6Label + ".marathon.mesos.", dns.TypeAAAA, dns.RcodeSuccess, "fd00::6"},
		{v6Label + ".marathon.slave.mesos.", dns.TypeAAAA, dns.RcodeSuccess, "fd00::6"},
		{v6Label + ".marathon.slave.mesos.", dns.TypeA, dns.RcodeSuccess, ""},
		{own + ".marathon.slave.mesos.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1"},
		{own + ".marathon.mesos.", dns.TypeSRV, dns.RcodeSuccess, ""},
		{app + ".marathon.mesos.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1"},
		{strings.Replace(app, ".", "-", 1) + ".marathon.slave.mesos.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1"},
		{"group-" + hash + "-s1.marathon.mesos.", dns.TypeA, dns.RcodeSuccess, ""},              // empty non-terminal
		{"app01.group-" + hash + "-s2.marathon.mesos.", dns.TypeA, dns.RcodeNameError, ""},      // wrong agent
		{"app01.group-" + hash + ".marathon.mesos.", dns.TypeA, dns.RcodeNameError, ""},         // no agent
		{"app01.group-ybndr-s1.marathon.mesos.", dns.TypeA, dns.RcodeNameError, ""},             // no such task
		{"web-" + taskHash("web.3") + "-s2.marathon.mesos.", dns.TypeA, dns.RcodeNameError, ""}, // unhealthy
		{"app01-" + hash + "-s1.marathon.mesos.", dns.TypeA, dns.RcodeNameError, ""},            // not the app's name
	} {
		m, _ := exchange(t, srv, w, packQuery(t, tc.name, tc.qtype, 0), loopback, false)
		var got []string
		for _, rr := range m.Answer {
			got = append(got, addressOf(rr))
		}
		want := []string{}
		if tc.answer != "" {
			want = []string{tc.answer}
		}
		if m.Rcode != tc.rcode || !slices.Equal(append([]string{}, got...), want) {
			t.Errorf("%s %s: %s %v, want %s %v", tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[m.Rcode], got, dns.RcodeToString[tc.rcode], want)
		}
		if len(m.Answer) == 0 && (len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA) {
			t.Errorf("%s: authority %v, want the SOA", tc.name, m.Ns)
		}
	}
}

// Two tasks of an app whose canonical names coincide (their hashes
// collide, on the same agent) and a canonical name that another app's
// name coincides with: each answers the union of the records, as the
// stored names would.
func TestCanonicalNamesShared(t *testing.T) {
	s := fixture(t)
	// Three task ids whose hashes collide: search a small space.
	seen := map[string][]string{}
	var ids []string
	for i := 0; ids == nil; i++ {
		id := fmt.Sprintf("twin.%d", i)
		h := taskHash(id)
		if seen[h] = append(seen[h], id); len(seen[h]) == 3 {
			ids = seen[h]
		}
	}
	a, b := ids[0], ids[1]
	label := canonicalLabel("twin", a, "a1-S1")
	commit(t, s,
		events.PutApp(app("/twin", "tcp")),
		events.PutTask(runningTask(a, "/twin", "a1-S1", "192.168.9.1", 31000)),
		events.PutTask(runningTask(b, "/twin", "a1-S1", "192.168.9.2", 31001)),
		events.PutApp(app("/"+label, "tcp")),
		events.PutTask(runningTask("other.1", "/"+label, "a2-S2", "10.0.0.2", 31002)),
		// The third in another app: the index holds two apps for the hash.
		events.PutApp(app("/triplet", "tcp")),
		events.PutTask(runningTask(ids[2], "/triplet", "a2-S2", "10.0.0.2", 31003)),
	)
	srv, _ := testServer(t, s)
	w := newPacketWorker(srv)
	for name, want := range map[string][]string{
		label + ".marathon.mesos.":                                      {"10.0.0.2", "192.168.9.1", "192.168.9.2"},
		label + ".marathon.slave.mesos.":                                {"10.0.0.1", "10.0.0.2"},
		canonicalLabel("triplet", ids[2], "a2-S2") + ".marathon.mesos.": {"10.0.0.2"},
	} {
		m, _ := exchange(t, srv, w, packQuery(t, name, dns.TypeA, 0), loopback, false)
		var got []string
		for _, rr := range m.Answer {
			got = append(got, addressOf(rr))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}

// The index of task hashes follows tasks that share a hash in and out of
// their apps: the zone after each event is the zone built from scratch,
// and a task's app is found for its removal.
func TestCanonicalHashIndexIncremental(t *testing.T) {
	seen := map[string][]string{}
	var ids []string
	for i := 0; ids == nil; i++ {
		id := fmt.Sprintf("twin.%d", i)
		h := taskHash(id)
		if seen[h] = append(seen[h], id); len(seen[h]) == 3 {
			ids = seen[h]
		}
	}
	s := fixture(t)
	z := BuildZone(s, testConfig)
	for _, c := range []events.Change{
		events.PutApp(app("/one", "tcp")),
		events.PutApp(app("/two", "tcp")),
		events.PutTask(runningTask(ids[0], "/one", "a1-S1", "10.0.0.1", 31000)),
		events.PutTask(runningTask(ids[1], "/two", "a1-S1", "10.0.0.1", 31001)),
		events.PutTask(runningTask(ids[2], "/two", "a2-S2", "10.0.0.2", 31002)),
		events.DeleteTask(ids[1]),
		events.DeleteTask(ids[0]),
		events.PutTask(runningTask(ids[0], "/two", "a2-S2", "10.0.0.2", 31003)),
		events.DeleteApp("/two"),
		events.DeleteTask(ids[2]),
		events.DeleteTask(ids[0]),
	} {
		z = z.Apply(s, commit(t, s, c)[0])
		got, want := rrStrings(z.Records()), rrStrings(BuildZone(s, testConfig).Records())
		if !slices.Equal(got, want) || z.Len() != len(want) {
			t.Fatalf("after %s %s: records differ (Len %d, want %d)\n%s\nwant\n%s", c.Type, c.ID, z.Len(), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if n := 0; true {
		z.hashes.each(func(string, appSet) { n++ })
		var want int
		BuildZone(s, testConfig).hashes.each(func(string, appSet) { want++ })
		if n != want {
			t.Errorf("index holds %d hashes, a zone built from scratch %d", n, want)
		}
		if _, ok := z.hashes.get(taskHash(ids[0])); ok {
			t.Errorf("index still holds the hash of tasks that are gone")
		}
	}
}

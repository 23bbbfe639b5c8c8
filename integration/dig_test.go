package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The real dig (bind9-dnsutils) queries the server in these tests: what a
// user types is what is checked. dig 9.18 has no JSON output, so its text
// is parsed, with +comments for the header and section titles.

// requireDig skips without dig, except in CI, where a missing tool must
// fail the run rather than let it pass untested.
func requireDig(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("dig"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dig is not installed (make deps installs bind9-dnsutils)")
		}
		t.Skip("dig is not installed; make deps installs bind9-dnsutils")
	}
}

// digRR is one record line of dig's output.
type digRR struct {
	Name  string
	TTL   uint32
	Type  string
	Data  []string // the rdata fields
	Class string
}

func (r digRR) String() string {
	return fmt.Sprintf("%s %d %s %s %s", r.Name, r.TTL, r.Class, r.Type, strings.Join(r.Data, " "))
}

// digReply is what dig printed for one query.
type digReply struct {
	Status     string   // NOERROR, NXDOMAIN, REFUSED, SERVFAIL, ...
	Flags      []string // qr, aa, rd, ra, tc, ...
	Question   []string // the question lines, without the leading ';'
	Answer     []digRR
	Authority  []digRR
	Additional []digRR
	EDNS       bool // the reply carried an OPT record
	Size       int  // bytes received, with +stats
	Raw        string
}

func (r digReply) flag(f string) bool { return slices.Contains(r.Flags, f) }

// records returns the records of one type in a section.
func records(section []digRR, typ string) []digRR {
	var out []digRR
	for _, rr := range section {
		if rr.Type == typ {
			out = append(out, rr)
		}
	}
	return out
}

// data returns the first rdata field of each record, sorted: the
// addresses of A records, the targets of PTRs.
func data(rrs []digRR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if len(rr.Data) > 0 {
			out = append(out, rr.Data[0])
		}
	}
	slices.Sort(out)
	return out
}

// digger queries one DNS server.
type digger struct {
	t    *testing.T
	host string
	port string
}

// query runs dig for name and type with extra options ("+tcp",
// "+bufsize=4096", "-b", "127.0.0.5", ...) and parses its output. A dig
// that gets no reply fails the test.
func (d digger) query(name, qtype string, opts ...string) digReply {
	d.t.Helper()
	r, err := d.try(name, qtype, opts...)
	if err != nil {
		d.t.Fatal(err)
	}
	return r
}

// reverse queries the PTR record of an IP address (dig -x).
func (d digger) reverse(ip string, opts ...string) digReply {
	d.t.Helper()
	return d.query("-x", ip, opts...) // dig reads "-x IP" where the name and type go
}

// try is query that returns dig's failure instead of failing the test,
// for use inside waitFor.
func (d digger) try(name, qtype string, opts ...string) (digReply, error) {
	args := []string{"@" + d.host, "-p", d.port, "+noall", "+question", "+answer", "+authority",
		"+additional", "+comments", "+tries=1", "+time=3"}
	args = append(args, opts...)
	args = append(args, name, qtype)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dig", args...).CombinedOutput()
	if err != nil {
		return digReply{}, fmt.Errorf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	r, err := parseDig(string(out))
	if err != nil {
		return digReply{}, fmt.Errorf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return r, nil
}

var (
	digHeader = regexp.MustCompile(`->>HEADER<<- opcode: \w+, status: (\w+), id: \d+`)
	digFlags  = regexp.MustCompile(`^;; flags:([^;]*);`)
	digSize   = regexp.MustCompile(`^;; MSG SIZE\s+rcvd: (\d+)`)
)

// parseDig reads dig's +comments output: the header, then sections
// introduced by ";; X SECTION:" lines.
func parseDig(out string) (digReply, error) {
	r := digReply{Raw: out}
	var section *[]digRR
	inQuestion := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			continue
		case digHeader.MatchString(line):
			r.Status = digHeader.FindStringSubmatch(line)[1]
		case digFlags.MatchString(line):
			r.Flags = strings.Fields(digFlags.FindStringSubmatch(line)[1])
		case digSize.MatchString(line):
			r.Size, _ = strconv.Atoi(digSize.FindStringSubmatch(line)[1])
		case strings.HasPrefix(line, "; EDNS:"):
			r.EDNS = true
		case strings.HasPrefix(line, ";; ") && strings.HasSuffix(line, "SECTION:"):
			inQuestion, section = false, nil
			switch strings.TrimSuffix(strings.TrimPrefix(line, ";; "), " SECTION:") {
			case "QUESTION":
				inQuestion = true
			case "ANSWER":
				section = &r.Answer
			case "AUTHORITY":
				section = &r.Authority
			case "ADDITIONAL":
				section = &r.Additional
			}
		case strings.HasPrefix(line, ";"):
			if inQuestion {
				r.Question = append(r.Question, strings.TrimPrefix(line, ";"))
			}
		case section != nil:
			rr, err := parseDigRR(line)
			if err != nil {
				return r, err
			}
			*section = append(*section, rr)
		}
	}
	if r.Status == "" {
		return r, fmt.Errorf("no header in dig's output")
	}
	return r, nil
}

func parseDigRR(line string) (digRR, error) {
	f := strings.Fields(line)
	if len(f) < 4 {
		return digRR{}, fmt.Errorf("record line %q: too few fields", line)
	}
	ttl, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil {
		return digRR{}, fmt.Errorf("record line %q: TTL: %v", line, err)
	}
	return digRR{Name: f[0], TTL: uint32(ttl), Class: f[2], Type: f[3], Data: f[4:]}, nil
}

package dnsserver

import (
	"crypto/sha1"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Names follow Mesos-DNS (records/generator.go and records/labels in
// mesosphere/mesos-dns) so that clients written for it keep working:
//
//	<task>.<fw>.<domain>                  A/AAAA: the task's addresses
//	<task>.<fw>.slave.<domain>            A/AAAA: the addresses of its agents
//	_<task>._tcp.<fw>.<domain>            SRV, one per task port (and _udp)
//	<task>-<hash>-<sid>.<fw>.<domain>     A/AAAA: one task with an address of its own
//	leader.<domain>, master.<domain>, master0.<domain>, <fw>.<domain>
//	_leader._tcp.<domain>, _leader._udp.<domain>
//	slave.<domain>                        A/AAAA: every active agent
//
// atoll adds a name per agent, <hostname>.slave.<domain>, and PTR records.
// See zone_owners.go for what is built from which record.

// maxLabel is the longest DNS label (RFC 1035 §2.3.4).
const maxLabel = 63

// sanitizeLabel turns any string into an RFC 1123 label the way Mesos-DNS's
// labels.RFC1123 does: ASCII letters are lowercased, digits kept, '.', '_'
// and '-' become '-', everything else (non-ASCII included) is dropped, and
// leading dashes are trimmed. A label longer than 63 characters is cut at 63;
// dashes at the cut are dropped and Mesos-DNS fills the room with the
// characters that follow them, so "hello-----…-----f" keeps its "f".
//
// One deliberate difference: the result never ends in '-'. Mesos-DNS can
// produce a trailing dash when the refill itself ends in one, which is not a
// valid label.
func sanitizeLabel(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			b = append(b, c)
		case 'A' <= c && c <= 'Z':
			b = append(b, c+('a'-'A'))
		case c == '-' || c == '.' || c == '_':
			b = append(b, '-')
		}
	}
	b = trimLeftDash(b)
	if len(b) <= maxLabel {
		return string(trimRightDash(b))
	}
	head := trimRightDash(b[:maxLabel])
	if room := maxLabel - len(head); room > 0 {
		tail := trimLeftDash(b[maxLabel:])
		head = append(head[:len(head):len(head)], tail[:min(len(tail), room)]...)
	}
	return string(trimRightDash(head))
}

func trimLeftDash(b []byte) []byte {
	for len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	return b
}

func trimRightDash(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == '-' {
		b = b[:len(b)-1]
	}
	return b
}

// domainFrag sanitizes every dot-separated part of name and drops the empty
// ones, as Mesos-DNS's labels.DomainFrag: "MiXeD.Host..com" -> "mixed.host.com".
func domainFrag(name string) string {
	var labels []string
	for part := range strings.SplitSeq(name, ".") {
		if l := sanitizeLabel(part); l != "" {
			labels = append(labels, l)
		}
	}
	return strings.Join(labels, ".")
}

// taskName is the DNS name of an app's tasks: the app id's path segments in
// reverse order, each sanitized, as Marathon names Mesos tasks
// ("/group/app01" -> "app01.group"). Empty when nothing valid is left.
func taskName(appID string) string {
	segs := strings.Split(appID, "/")
	labels := make([]string, 0, len(segs))
	for i := len(segs) - 1; i >= 0; i-- {
		if l := sanitizeLabel(segs[i]); l != "" {
			labels = append(labels, l)
		}
	}
	return strings.Join(labels, ".")
}

// agentLabel is the agent's part of its name <label>.slave.<domain>: its
// hostname as a domain fragment, or its id when the hostname has nothing
// usable.
func agentLabel(hostname, id string) string {
	if l := domainFrag(hostname); l != "" {
		return l
	}
	return sanitizeLabel(id)
}

// agentIDTail is the last dash-separated field of a Mesos agent id
// ("…-S3" -> "s3"), which Mesos-DNS puts in canonical task names.
func agentIDTail(id string) string {
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		id = id[i+1:]
	}
	return sanitizeLabel(id)
}

// zbase32 is the human-oriented base-32 alphabet Mesos-DNS uses for its
// task hashes.
const zbase32 = "ybndrfg8ejkmcpqxot1uwisza345h769"

// taskHash is Mesos-DNS's hashString: the first 5 z-base-32 characters of
// the task id's SHA-1, enough to tell an app's tasks apart.
func taskHash(taskID string) string {
	h := taskHashBytes(taskID)
	return string(h[:])
}

// taskHashBytes is taskHash as an array, as the zone keeps it.
func taskHashBytes(taskID string) [5]byte {
	sum := sha1.Sum([]byte(taskID))
	// 5 characters take the first 25 bits.
	v := uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3])
	var out [5]byte
	for i := range out {
		out[i] = zbase32[v>>27]
		v <<= 5
	}
	return out
}

// isZbase32 reports whether c is a character of the z-base-32 alphabet.
func isZbase32(c byte) bool {
	return strings.IndexByte(zbase32, c) >= 0
}

// canonicalLabel is the Mesos-DNS per-task name below the framework:
// <task>-<hash>-<agent id tail>, where only the task name's last label gets
// the suffix ("app01.group" -> "app01.group-ab3de-s1"). The last label is
// shortened so that it stays a valid label.
func canonicalLabel(task, taskID, agentID string) string {
	return canonicalFrom(task, taskHashBytes(taskID), agentIDTail(agentID))
}

// canonicalFrom is canonicalLabel from the task's hash and its agent id's
// tail ("" for none).
func canonicalFrom(task string, hash [5]byte, tail string) string {
	suffix := canonicalSuffixLen(tail)
	head, last := splitLast(task)
	if len(last)+suffix > maxLabel {
		last = strings.TrimRight(last[:maxLabel-suffix], "-")
	}
	b := make([]byte, 0, len(head)+len(last)+suffix)
	b = append(append(b, head...), last...)
	b = append(append(b, '-'), hash[:]...)
	if tail != "" {
		b = append(append(b, '-'), tail...)
	}
	return string(b)
}

// canonicalShortened reports whether the canonical name of a task of name
// task on an agent with id tail tail has its last label shortened.
func canonicalShortened(task, tail string) bool {
	_, last := splitLast(task)
	return len(last)+canonicalSuffixLen(tail) > maxLabel
}

// canonicalSuffixLen is the length of "-<hash>-<tail>" ("-<hash>" without
// a tail).
func canonicalSuffixLen(tail string) int {
	if tail == "" {
		return 1 + 5
	}
	return 1 + 5 + 1 + len(tail)
}

// splitLast splits a task name before its last label: "web.shop" ->
// "web.", "shop".
func splitLast(task string) (head, last string) {
	if i := strings.LastIndexByte(task, '.'); i >= 0 {
		return task[:i+1], task[i+1:]
	}
	return "", task
}

// reverseName is the PTR owner name of addr (in-addr.arpa or ip6.arpa).
func reverseName(addr netip.Addr) string {
	name, err := dns.ReverseAddr(addr.String())
	if err != nil {
		return "" // cannot happen for a valid address
	}
	return name
}

// isReverseName reports whether name is under in-addr.arpa or ip6.arpa.
func isReverseName(name string) bool {
	return strings.HasSuffix(name, ".in-addr.arpa.") || strings.HasSuffix(name, ".ip6.arpa.")
}

// validName reports whether a lowercase FQDN fits the DNS limits: labels of
// 1 to 63 octets and at most 255 octets on the wire. Names built from user
// input (app ids, hostnames) can exceed them; such names are not served.
func validName(name string) bool {
	if name == "." {
		return true
	}
	if len(name)+1 > 255 || !strings.HasSuffix(name, ".") {
		return false
	}
	for label := range strings.SplitSeq(name[:len(name)-1], ".") {
		if len(label) == 0 || len(label) > maxLabel {
			return false
		}
	}
	return true
}

// isSubdomain reports whether name is origin or below it; both are
// lowercase FQDNs.
func isSubdomain(name, origin string) bool {
	if len(name) == len(origin) {
		return name == origin
	}
	return len(name) > len(origin) && name[len(name)-len(origin)-1] == '.' && strings.HasSuffix(name, origin)
}

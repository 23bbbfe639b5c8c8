package dnsserver

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Canonical task names, <task>-<hash>-<agent id tail> under <fw>.<domain>
// and <fw>.slave.<domain> in both the dashed and the dotted form of the
// task name, are four names per task: 200,000 at 50,000 tasks, and the
// dotted ones add an empty non-terminal each. The zone does not store
// them. It keeps, per app, its serving tasks' hashes, agent id tails and
// addresses (canonTask, sorted by hash), and an index from a hash to the
// apps with a task of that hash; a question is answered by reading the
// hash and the tail out of its last label and checking the rest against
// the app's task names (canonLookup). That allocates nothing.
//
// The exception is a canonical name whose last label had to be shortened
// to stay within 63 characters: the question's label no longer holds the
// app's, so those few are stored as names like any other (appRecords).
//
// A canonical name that another owner's name or another task's canonical
// name coincides with (a 25-bit hash collision, or an app whose id reads
// like a canonical name) is answered through Lookup, which unions them.
// Len counts the records of each owner (an app's tasks are one): a record
// that two owners give at one name is counted twice.

// canonTask is what a serving task's canonical names answer: its own
// addresses (the first IPv4 and IPv6 one, or its agent's) at
// <canonical>.<fw>.<domain>, its agent's at <canonical>.<fw>.slave.<domain>.
//
// 40 bytes: the IPv6 addresses, rare, are behind a pointer.
type canonTask struct {
	tail   string // the agent id's tail, "" for none
	v6     *canonV6
	ip4    [4]byte
	agent4 [4]byte
	hash   [5]byte
	flags  uint8
}

// canonV6 is a task's IPv6 addresses.
type canonV6 struct {
	ip6, agent6 [16]byte
}

const (
	canonHas4   = 1 << iota // ip4 holds an address
	canonHas6               // v6.ip6 holds an address
	canonAgent              // the agent has an address: the .slave. names exist
	canonAgent4             // ... an IPv4 one, in agent4; else in v6.agent6
)

// newCanonTask is the canonical names' data of a task; addrs are its
// addresses (at most one of each family), agentAddrs its agent's (one or
// none).
func newCanonTask(hash [5]byte, tail string, addrs, agentAddrs []netip.Addr) canonTask {
	t := canonTask{hash: hash, tail: tail}
	v6 := func() *canonV6 {
		if t.v6 == nil {
			t.v6 = new(canonV6)
		}
		return t.v6
	}
	for _, a := range addrs {
		if a.Is4() {
			t.ip4, t.flags = a.As4(), t.flags|canonHas4
		} else {
			v6().ip6, t.flags = a.As16(), t.flags|canonHas6
		}
	}
	if len(agentAddrs) > 0 {
		t.flags |= canonAgent
		if a := agentAddrs[0]; a.Is4() {
			t.agent4, t.flags = a.As4(), t.flags|canonAgent4
		} else {
			v6().agent6 = a.As16()
		}
	}
	return t
}

func compareCanon(a, b canonTask) int {
	if c := bytes.Compare(a.hash[:], b.hash[:]); c != 0 {
		return c
	}
	return strings.Compare(a.tail, b.tail)
}

// recs is the task's records at its canonical name in the .slave. family
// or not, normalized.
func (t *canonTask) recs(slave bool) []rec {
	var out []rec
	switch {
	case slave && t.flags&canonAgent4 != 0:
		out = append(out, addrRec(netip.AddrFrom4(t.agent4)))
	case slave && t.flags&canonAgent != 0:
		out = append(out, addrRec(netip.AddrFrom16(t.v6.agent6)))
	case !slave:
		if t.flags&canonHas4 != 0 {
			out = append(out, addrRec(netip.AddrFrom4(t.ip4)))
		}
		if t.flags&canonHas6 != 0 {
			out = append(out, addrRec(netip.AddrFrom16(t.v6.ip6)))
		}
	}
	return out
}

// addr is the address the canonical name answers a question of qtype (A or
// AAAA) with, in wire form; nil for none. A canonical name holds at most
// one record of each type.
func (t *canonTask) addr(slave bool, qtype uint16) []byte {
	switch {
	case slave && t.flags&canonAgent4 != 0:
		if qtype == dns.TypeA {
			return t.agent4[:]
		}
	case slave && t.flags&canonAgent != 0:
		if qtype == dns.TypeAAAA {
			return t.v6.agent6[:]
		}
	case slave:
	case qtype == dns.TypeA && t.flags&canonHas4 != 0:
		return t.ip4[:]
	case qtype == dns.TypeAAAA && t.flags&canonHas6 != 0:
		return t.v6.ip6[:]
	}
	return nil
}

// tailIs reports whether what follows the hash in a label, "" or
// "-<tail>", is this task's.
func (t *canonTask) tailIs(rest []byte) bool {
	if t.tail == "" {
		return len(rest) == 0
	}
	return len(rest) == len(t.tail)+1 && rest[0] == '-' && string(rest[1:]) == t.tail
}

// exists reports whether the task has a canonical name in the family.
func (t *canonTask) exists(slave bool) bool {
	return !slave || t.flags&canonAgent != 0
}

// canonCount is the number of records at the canonical names of an app's
// tasks canon (sorted) under its task names tasks, the stored ones left
// out. Tasks with one canonical name (their hashes collide, on one agent)
// count their records once.
func canonCount(c *zoneConfig, tasks [2]string, canon []canonTask) int {
	n := 0
	for i := 0; i < len(canon); {
		j := i + 1
		for j < len(canon) && compareCanon(canon[i], canon[j]) == 0 {
			j++
		}
		t := &canon[i]
		for _, slave := range []bool{false, true} {
			var recs []rec
			for k := i; k < j; k++ {
				recs = append(recs, canon[k].recs(slave)...)
			}
			per := len(recs)
			if j > i+1 {
				per = len(normalizeRecs(recs))
			}
			suffix := c.fwOrigin
			if slave {
				suffix = c.fwSlave
			}
			for _, task := range tasks {
				if task != "" && !canonicalShortened(task, t.tail) &&
					len(task)+canonicalSuffixLen(t.tail)+1+len(suffix) <= 254 {
					n += per
				}
			}
		}
		i = j
	}
	return n
}

// canonResult is what the canonical names say of a name.
type canonResult struct {
	task   *canonTask // the first task whose canonical name it is
	tasks  int        // how many tasks' canonical name it is
	slave  bool       // the name is in <fw>.slave.<domain>
	exists bool       // a canonical name, or an empty non-terminal above one
}

// canonLookup answers name (a lowercase FQDN) from the canonical names.
// When all is not nil, the records of every task whose canonical name it
// is are appended to it.
func (z *Zone) canonLookup(name []byte, all *[]rec) (res canonResult) {
	c := z.cfg
	var p []byte // the name below the framework
	switch {
	case hasLabelSuffix(name, c.fwSlave):
		p, res.slave = name[:len(name)-len(c.fwSlave)-1], true
	case hasLabelSuffix(name, c.fwOrigin):
		p = name[:len(name)-len(c.fwOrigin)-1]
	default:
		return res
	}
	label := p[bytes.LastIndexByte(p, '.')+1:]
	if len(label) > maxLabel || len(name) > 254 {
		return res
	}
	base := len(p) - len(label)
	// The hash is 5 z-base-32 characters after a dash, then the end of
	// the label or a dash and the tail (which may hold dashes itself).
	for i := 1; i+6 <= len(label); i++ {
		if label[i] != '-' || !isHashAt(label[i+1:i+6]) || i+6 < len(label) && label[i+6] != '-' {
			continue
		}
		var hash [5]byte
		copy(hash[:], label[i+1:i+6])
		rest := label[i+6:]
		prefix := p[:base+i] // the task name, or its last labels
		apps, _ := z.hashes.getBytes(hash[:])
		for off := 0; off < len(apps); {
			var appID string
			appID, off = apps.at(off)
			e, ok := z.apps.get(appID)
			if !ok {
				continue
			}
			for _, task := range e.task {
				exact := task == string(prefix)
				// Or an empty non-terminal above a dotted name.
				ent := !exact && len(task) > len(prefix) && task[len(task)-len(prefix)-1] == '.' &&
					task[len(task)-len(prefix):] == string(prefix)
				if !exact && !ent || len(name)+len(task)-len(prefix) > 254 {
					continue
				}
				k, _ := slices.BinarySearchFunc(e.canon, hash, func(t canonTask, h [5]byte) int { return bytes.Compare(t.hash[:], h[:]) })
				for ; k < len(e.canon) && e.canon[k].hash == hash; k++ {
					t := &e.canon[k]
					if !t.tailIs(rest) || !t.exists(res.slave) {
						continue
					}
					res.exists = true
					if exact {
						if res.tasks == 0 {
							res.task = t
						}
						res.tasks++
						if all != nil {
							*all = append(*all, t.recs(res.slave)...)
						}
					}
				}
			}
		}
	}
	return res
}

// isHashAt reports whether b is 5 z-base-32 characters.
func isHashAt(b []byte) bool {
	for _, c := range b {
		if !isZbase32(c) {
			return false
		}
	}
	return true
}

// hasLabelSuffix reports whether name ends in the labels of suffix, with
// at least one label before them.
func hasLabelSuffix(name []byte, suffix string) bool {
	n := len(name) - len(suffix)
	return n > 1 && name[n-1] == '.' && string(name[n:]) == suffix
}

// canonNames lists the canonical names of an app's tasks that the zone
// does not store, with their records (normalized, a task's own).
func (z *Zone) canonNames(e *appEntry, f func(name string, recs []rec)) {
	for _, task := range e.task {
		if task == "" {
			continue
		}
		for i := range e.canon {
			t := &e.canon[i]
			if canonicalShortened(task, t.tail) {
				continue // stored
			}
			label := canonicalFrom(task, t.hash, t.tail)
			for _, slave := range []bool{false, true} {
				name := label + "." + z.cfg.fwOrigin
				if slave {
					name = label + "." + z.cfg.fwSlave
				}
				if t.exists(slave) && validName(name) {
					f(name, t.recs(slave))
				}
			}
		}
	}
}

// composeAddr writes the reply to q with one address record: the owner a
// pointer to the question, as packAnswer packs it.
func composeAddr(out, pkt []byte, q *query, flags uint16, ttl uint32, ip []byte) []byte {
	out = appendHeader(out, pkt, q, flags, 1, 0, uint16(optLen(q)/optRRLen))
	out = binary.BigEndian.AppendUint16(out, 0xC000|headerLen)
	out = binary.BigEndian.AppendUint16(out, q.qtype)
	out = binary.BigEndian.AppendUint16(out, dns.ClassINET)
	out = binary.BigEndian.AppendUint32(out, ttl)
	out = binary.BigEndian.AppendUint16(out, uint16(len(ip)))
	out = append(out, ip...)
	return appendOPT(out, q)
}

// hashIndex keeps the index hash -> apps up to date when the hashes of an
// app's tasks go from had to has (sorted, each once). The index finds the
// app of a task id, and the apps a canonical name may belong to.
func (b *zoneEdit) hashIndex(appID string, had, has [][5]byte) {
	for _, h := range had {
		if _, still := slices.BinarySearchFunc(has, h, compareHash); still {
			continue
		}
		key := string(h[:])
		set, _ := b.hashes.get(key)
		apps := set.list()
		if i, ok := slices.BinarySearch(apps, appID); ok {
			if len(apps) == 1 {
				b.hashes.del(key)
			} else {
				b.hashes.set(key, makeAppSet(slices.Delete(apps, i, i+1)))
			}
		}
	}
	for _, h := range has {
		if _, before := slices.BinarySearchFunc(had, h, compareHash); before {
			continue
		}
		key := string(h[:])
		set, _ := b.hashes.get(key)
		b.hashes.set(key, makeAppSet(insert(set.list(), appID)))
	}
}

func compareHash(a, b [5]byte) int { return bytes.Compare(a[:], b[:]) }

// taskHashes is the hashes of task ids, in their order.
func taskHashes(ids []string) [][5]byte {
	out := make([][5]byte, len(ids))
	for i, id := range ids {
		out[i] = taskHashBytes(id)
	}
	return out
}

// distinctHashes is hashes sorted, each once, without spare capacity (the
// zone keeps it); nil for none. hashes is reordered.
func distinctHashes(hashes [][5]byte) [][5]byte {
	slices.SortFunc(hashes, compareHash)
	hashes = slices.Compact(hashes)
	if len(hashes) == 0 {
		return nil
	}
	return slices.Clone(hashes)
}

// appSet is the apps of one task hash, as the index keeps them: the app id
// itself when there is one (nearly always, at 25 bits of hash: no
// allocation, and the zone's copy of the id), else a 0 byte, then each id
// after its length as a uvarint.
type appSet string

func makeAppSet(ids []string) appSet {
	if len(ids) == 1 && ids[0] != "" && ids[0][0] != 0 {
		return appSet(ids[0])
	}
	b := []byte{0}
	for _, id := range ids {
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
	}
	return appSet(b)
}

// at returns the id at offset off, and the offset of the next one (len(s)
// after the last). Iterate from 0 while off < len(s).
func (s appSet) at(off int) (string, int) {
	if s[0] != 0 {
		return string(s), len(s)
	}
	if off == 0 {
		off = 1
	}
	n, shift := 0, 0
	for ; off < len(s) && shift < 63; off, shift = off+1, shift+7 {
		n |= int(s[off]&0x7f) << shift
		if s[off] < 0x80 {
			off++
			break
		}
	}
	if n < 0 || off+n > len(s) {
		return "", len(s) // cannot happen: makeAppSet wrote it
	}
	return string(s[off : off+n]), off + n
}

// list is the ids, sorted as they were given.
func (s appSet) list() []string {
	var out []string
	for off := 0; off < len(s); {
		var id string
		id, off = s.at(off)
		out = append(out, id)
	}
	return out
}

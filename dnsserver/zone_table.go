package dnsserver

import (
	"cmp"
	"slices"
	"sync/atomic"

	"github.com/miekg/dns"
)

// The zone's names live in a cowMap[node]. A name's records come from one or
// more owners (an app, an agent, the leader, the zone itself); each owner's
// share is a part, so an owner can replace its records at a name without
// knowing who else answers there (two apps whose ids sanitize to the same
// name, an agent whose hostname looks like a task name).

// ownerKind says what kind of record an owner is.
type ownerKind uint8

const (
	ownerStatic ownerKind = iota // SOA, NS, ns1
	ownerLeader
	ownerAgent
	ownerApp
)

// owner is who contributes records to a name.
type owner struct {
	kind ownerKind
	id   string // agent or app id
}

func compareOwner(a, b owner) int {
	if c := cmp.Compare(a.kind, b.kind); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// part is one owner's records at a name, normalized.
type part struct {
	owner owner
	recs  []rec
}

// node is one name. below counts the names under it that hold records, so
// that an empty non-terminal (marathon.mesos. above _web._tcp.marathon.mesos.
// when there is no leader) exists: it gets NODATA, never NXDOMAIN, which a
// resolver would take for "nothing below exists" (RFC 8020).
//
// The name itself is the table's key: a node is 16 bytes.
type node struct {
	below int32
	data  *nodeData // nil for an empty non-terminal
}

// nodeData is a name's records. It is immutable apart from the cache, which
// only ever goes from empty to the packed form of these same records; nodes
// that differ only in below share it, and so share their packed answers.
// Names of one owner with the same records share it too when their answers
// pack to the same bytes (packsAlike): a task's <canonical>.<fw> and
// <canonical>.<fw>.slave when the task uses its agent's address (an A or
// AAAA answer does not depend on the name it is for), an app's
// _<task>._tcp.<fw>.slave and _<task>._udp.<fw>.slave.
//
// A zone of 50,000 tasks holds some 80,000 of them, so the struct is kept
// within 64 bytes: the one owner inline, as its id and kind, and the parts
// of several behind a pointer.
type nodeData struct {
	recs    []rec   // the union of the parts, normalized
	more    *[]part // by owner, when there are two or more; else nil
	ownerID string  // the one owner when more is nil: no slice of one part
	cache   atomic.Pointer[answerCache]
	kind    ownerKind // the one owner's
	types   typeSet
}

// owner is the one owner when d.more is nil.
func (d *nodeData) owner() owner { return owner{kind: d.kind, id: d.ownerID} }

func newNodeData(parts []part) *nodeData {
	d := &nodeData{}
	if len(parts) == 1 {
		d.kind, d.ownerID, d.recs = parts[0].owner.kind, parts[0].owner.id, parts[0].recs
	} else {
		d.more = &parts
		var all []rec
		for _, p := range parts {
			all = append(all, p.recs...)
		}
		d.recs = normalizeRecs(all)
	}
	for _, r := range d.recs {
		d.types |= typeBit(r.typ)
	}
	return d
}

// parts is the name's records by owner.
func (d *nodeData) parts() []part {
	if d.more != nil {
		return *d.more
	}
	return []part{{owner: d.owner(), recs: d.recs}}
}

// typeSet is the set of record types at a name, so that the hot path knows
// NODATA from an answer without walking the records.
type typeSet uint8

func typeBit(t uint16) typeSet {
	switch t {
	case dns.TypeA:
		return 1 << slotA
	case dns.TypeAAAA:
		return 1 << slotAAAA
	case dns.TypeSRV:
		return 1 << slotSRV
	case dns.TypePTR:
		return 1 << slotPTR
	case dns.TypeNS:
		return 1 << slotNS
	case dns.TypeSOA:
		return 1 << numSlots
	}
	return 0
}

// has reports whether the name holds records of qtype (any, for TypeANY).
func (d *nodeData) has(qtype uint16) bool {
	if d == nil {
		return false
	}
	if qtype == dns.TypeANY {
		return len(d.recs) > 0
	}
	return d.types&typeBit(qtype) != 0
}

// tableEdit changes the names of a zone being built. It keeps the record
// count and the empty non-terminals up to date.
type tableEdit struct {
	names  *cowEdit[node]
	origin string
	count  int // records in the zone
}

// setPart makes recs (normalized; empty to remove) o's records at name.
// It returns the zone's copy of name when it has one, so that callers keep
// that string rather than another copy of it, and the name's data. share
// is the data of another name o set in this edit whose answers pack alike,
// or nil: when name ends up with the same records, from o alone, it takes
// share rather than data of its own.
func (t *tableEdit) setPart(name string, o owner, recs []rec, share *nodeData) (string, *nodeData) {
	key, n, ok := t.names.getKey(name)
	if ok {
		name = key
	}
	var parts []part
	if n.data != nil {
		parts = n.data.parts()
	}
	i, found := slices.BinarySearchFunc(parts, o, func(p part, o owner) int { return compareOwner(p.owner, o) })
	switch {
	case found && slices.Equal(parts[i].recs, recs):
		return name, n.data // unchanged: keep the node and its packed answers
	case !found && len(recs) == 0:
		return name, n.data
	}
	size := len(parts) // the zone keeps it: no spare capacity
	switch {
	case !found:
		size++
	case len(recs) == 0:
		size--
	}
	next := make([]part, 0, size)
	next = append(next, parts[:i]...)
	if len(recs) > 0 {
		next = append(next, part{owner: o, recs: recs})
	}
	if found {
		i++
	}
	next = append(next, parts[i:]...)

	had := n.data != nil
	if had {
		t.count -= len(n.data.recs)
	}
	n.data = nil
	switch {
	case len(next) == 1 && share != nil && share.more == nil &&
		share.owner() == o && slices.Equal(share.recs, recs):
		n.data = share
	case len(next) > 0:
		n.data = newNodeData(next)
	}
	if n.data != nil {
		t.count += len(n.data.recs)
	}
	t.put(name, n)
	if has := n.data != nil; has != had {
		d := int32(1)
		if !has {
			d = -1
		}
		t.adjustAncestors(name, d)
	}
	return name, n.data
}

// put stores n at name, or drops it when it is no longer needed.
func (t *tableEdit) put(name string, n node) {
	if n.data == nil && n.below == 0 {
		t.names.del(name)
		return
	}
	t.names.set(name, n)
}

// adjustAncestors adds d to below of every name between name and the
// origin (both excluded). Names outside the origin (PTR names) have no
// ancestors in the zone.
func (t *tableEdit) adjustAncestors(name string, d int32) {
	if name == t.origin || !isSubdomain(name, t.origin) {
		return
	}
	for i := 0; i < len(name)-len(t.origin)-1; i++ {
		if name[i] != '.' {
			continue
		}
		anc := name[i+1:]
		n, _ := t.names.get(anc)
		n.below += d
		t.put(anc, n)
	}
}

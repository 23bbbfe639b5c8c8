package dnsserver

import "maps"

// cowMap is a persistent string-keyed map: never changed once built, and
// edits make a new map that shares everything they do not touch. Readers
// use it without locks. The zero value is an empty map.
//
// It is a two-level trie of 64 x 64 small Go maps, picked by a hash of the
// key. An edit copies the root (64 pointers) once, and for each key it
// touches one branch (64 pointers) and one leaf map: at 100,000 names a
// leaf holds some 25 entries, so a task event copies a few kilobytes
// rather than the table.
type cowMap[V any] struct {
	root *cowRoot[V]
}

const cowFan = 64

type (
	cowRoot[V any]   [cowFan]*cowBranch[V]
	cowBranch[V any] [cowFan]map[string]V
)

// hashKey is FNV-1a over the key; hashBytes must agree with it.
func hashKey(key string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return h
}

func hashBytes(key []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range key {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// slot splits a hash into the branch and leaf indexes.
func slot(h uint32) (int, int) { return int(h>>6) % cowFan, int(h % cowFan) }

func (m cowMap[V]) leaf(h uint32) map[string]V {
	if m.root == nil {
		return nil
	}
	i, j := slot(h)
	if b := m.root[i]; b != nil {
		return b[j]
	}
	return nil
}

func (m cowMap[V]) get(key string) (V, bool) {
	v, ok := m.leaf(hashKey(key))[key]
	return v, ok
}

// getBytes looks a key up without making it a string: the compiler does
// not allocate for m[string(b)].
func (m cowMap[V]) getBytes(key []byte) (V, bool) {
	v, ok := m.leaf(hashBytes(key))[string(key)]
	return v, ok
}

// each calls f for every entry, in no particular order.
func (m cowMap[V]) each(f func(string, V)) {
	if m.root == nil {
		return
	}
	for _, b := range m.root {
		if b == nil {
			continue
		}
		for _, l := range b {
			for k, v := range l {
				f(k, v)
			}
		}
	}
}

// cowEdit is one edit of a cowMap: the root, branches and leaves it changed
// are its own copies; the rest still belongs to the map it started from.
type cowEdit[V any] struct {
	root      cowRoot[V]
	ownBranch uint64         // bit i: root[i] is ours
	ownLeaf   [cowFan]uint64 // bit j of word i: root[i][j] is ours
}

func (m cowMap[V]) edit() *cowEdit[V] {
	e := &cowEdit[V]{}
	if m.root != nil {
		e.root = *m.root
	}
	return e
}

func (e *cowEdit[V]) get(key string) (V, bool) {
	i, j := slot(hashKey(key))
	if b := e.root[i]; b != nil {
		v, ok := b[j][key]
		return v, ok
	}
	var zero V
	return zero, false
}

// own returns the leaf of key's hash, copying what still belongs to the
// old map on the way.
func (e *cowEdit[V]) own(h uint32) map[string]V {
	i, j := slot(h)
	if e.ownBranch&(1<<i) == 0 {
		b := new(cowBranch[V])
		if e.root[i] != nil {
			*b = *e.root[i]
		}
		e.root[i] = b
		e.ownBranch |= 1 << i
	}
	b := e.root[i]
	if e.ownLeaf[i]&(1<<j) == 0 {
		l := maps.Clone(b[j])
		if l == nil {
			l = map[string]V{}
		}
		b[j] = l
		e.ownLeaf[i] |= 1 << j
	}
	return b[j]
}

func (e *cowEdit[V]) set(key string, v V) {
	e.own(hashKey(key))[key] = v
}

func (e *cowEdit[V]) del(key string) {
	if _, ok := e.get(key); ok {
		delete(e.own(hashKey(key)), key)
	}
}

// done makes the new map. The edit must not be used afterwards.
func (e *cowEdit[V]) done() cowMap[V] {
	root := e.root
	return cowMap[V]{root: &root}
}

package dnsserver

import "slices"

// cowMap is a persistent string-keyed map: never changed once built, and
// edits make a new map that shares everything they do not touch. Readers
// use it without locks. The zero value is an empty map.
//
// It is a two-level trie of 64 x 64 leaves, picked by a hash of the key;
// a leaf is a slice of entries sorted by key, without spare capacity. An edit copies the root (64 pointers) once, and for each key it
// touches one branch (64 slices) and one leaf: at 100,000 names a leaf
// holds some 25 entries, so a task event copies a few kilobytes rather
// than the table. A slice leaf takes the entries' bytes and nothing more,
// where a Go map of the same entries takes two to three times as much
// (its groups' free slots, and what a clone keeps of them).
type cowMap[V any] struct {
	root *cowRoot[V]
}

const cowFan = 64

type (
	cowRoot[V any]   [cowFan]*cowBranch[V]
	cowBranch[V any] [cowFan][]cowEntry[V]
)

// cowEntry is one key of a leaf. It holds no hash: at 200,000 names that
// would be another 1.6 MB, and a leaf's 40 or so keys are told apart by a
// binary search in their first few bytes.
type cowEntry[V any] struct {
	key string
	val V
}

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

// find returns the index of key in leaf, or where it goes and false.
func find[V any](leaf []cowEntry[V], key string) (int, bool) {
	lo, hi := 0, len(leaf)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if leaf[m].key < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(leaf) && leaf[lo].key == key
}

func (m cowMap[V]) leaf(h uint32) []cowEntry[V] {
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
	h := hashKey(key)
	leaf := m.leaf(h)
	if i, ok := find(leaf, key); ok {
		return leaf[i].val, true
	}
	var zero V
	return zero, false
}

// getKey is get that returns the map's copy of the key too.
func (m cowMap[V]) getKey(key string) (string, V, bool) {
	h := hashKey(key)
	leaf := m.leaf(h)
	if i, ok := find(leaf, key); ok {
		return leaf[i].key, leaf[i].val, true
	}
	var zero V
	return "", zero, false
}

// getBytes looks a key up without making it a string: the compiler does
// not allocate for a comparison with string(b).
func (m cowMap[V]) getBytes(key []byte) (V, bool) {
	leaf := m.leaf(hashBytes(key))
	lo, hi := 0, len(leaf)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if leaf[m].key < string(key) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(leaf) && leaf[lo].key == string(key) {
		return leaf[lo].val, true
	}
	var zero V
	return zero, false
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
			for _, e := range l {
				f(e.key, e.val)
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
	_, v, ok := e.getKey(key)
	return v, ok
}

// getKey is get that returns the map's copy of the key too.
func (e *cowEdit[V]) getKey(key string) (string, V, bool) {
	h := hashKey(key)
	i, j := slot(h)
	if b := e.root[i]; b != nil {
		if k, ok := find(b[j], key); ok {
			return b[j][k].key, b[j][k].val, true
		}
	}
	var zero V
	return "", zero, false
}

// own returns the branch of key's hash with its leaf made ours, copying
// what still belongs to the old map on the way.
func (e *cowEdit[V]) own(h uint32) (*cowBranch[V], int) {
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
		b[j] = append(make([]cowEntry[V], 0, len(b[j])+1), b[j]...)
		e.ownLeaf[i] |= 1 << j
	}
	return b, j
}

func (e *cowEdit[V]) set(key string, v V) {
	h := hashKey(key)
	b, j := e.own(h)
	k, ok := find(b[j], key)
	if ok {
		b[j][k].val = v
		return
	}
	b[j] = slices.Insert(b[j], k, cowEntry[V]{key: key, val: v})
}

func (e *cowEdit[V]) del(key string) {
	if _, ok := e.get(key); !ok {
		return
	}
	h := hashKey(key)
	b, j := e.own(h)
	if k, ok := find(b[j], key); ok {
		b[j] = slices.Delete(b[j], k, k+1)
	}
}

// done makes the new map, its leaves without spare capacity (the zone
// keeps them). The edit must not be used afterwards.
func (e *cowEdit[V]) done() cowMap[V] {
	for i := range cowFan {
		own := e.ownLeaf[i]
		for j := 0; own != 0; j, own = j+1, own>>1 {
			l := e.root[i][j]
			if own&1 == 0 || cap(l) == len(l) {
				continue
			}
			if len(l) == 0 {
				e.root[i][j] = nil
			} else {
				e.root[i][j] = append(make([]cowEntry[V], 0, len(l)), l...)
			}
		}
	}
	root := e.root
	return cowMap[V]{root: &root}
}

package router

import (
	"math/bits"
	"net/netip"
	"slices"

	"github.com/caddy-apisix/stream/internal/hash64"
)

// pmap is a persistent hash map (a hash array mapped trie): set and del
// return a new map that shares every untouched node with the old one,
// which stays valid and unchanged. A change costs O(log32 n) nodes of at
// most 32 slots, so one route's change in a table of many does not copy
// the table. The zero pmap is empty; its hash must be set before use.
type pmap[K comparable, V any] struct {
	root *pnode[K, V]
	n    int
	hash func(K) uint64
}

// pnode is a trie node: bitmap marks which of the 32 slots of this level
// are present, kids holds them in slot order.
type pnode[K comparable, V any] struct {
	bitmap uint32
	kids   []pslot[K, V]
}

// pslot is either a subtree or a leaf (the keys whose hashes are equal).
type pslot[K comparable, V any] struct {
	node *pnode[K, V]
	leaf *pleaf[K, V]
}

type pleaf[K comparable, V any] struct {
	hash uint64
	kvs  []pkv[K, V]
}

type pkv[K comparable, V any] struct {
	k K
	v V
}

const pbits = 5

func slotOf(h uint64, shift uint) (bit uint32) { return 1 << ((h >> shift) & 31) }

func (n *pnode[K, V]) pos(bit uint32) int { return bits.OnesCount32(n.bitmap & (bit - 1)) }

// len is the number of keys.
func (m pmap[K, V]) len() int { return m.n }

// get returns the value of k.
func (m pmap[K, V]) get(k K) (v V, ok bool) {
	if m.root == nil {
		return v, false
	}
	h := m.hash(k)
	n := m.root
	for shift := uint(0); ; shift += pbits {
		bit := slotOf(h, shift)
		if n.bitmap&bit == 0 {
			return v, false
		}
		s := n.kids[n.pos(bit)]
		if s.leaf != nil {
			if s.leaf.hash != h {
				return v, false
			}
			for _, kv := range s.leaf.kvs {
				if kv.k == k {
					return kv.v, true
				}
			}
			return v, false
		}
		n = s.node
	}
}

// each calls fn for every key and value, in no particular order.
func (m pmap[K, V]) each(fn func(K, V)) {
	var walk func(n *pnode[K, V])
	walk = func(n *pnode[K, V]) {
		for _, s := range n.kids {
			if s.node != nil {
				walk(s.node)
				continue
			}
			for _, kv := range s.leaf.kvs {
				fn(kv.k, kv.v)
			}
		}
	}
	if m.root != nil {
		walk(m.root)
	}
}

// set returns m with k set to v.
func (m pmap[K, V]) set(k K, v V) pmap[K, V] {
	h := m.hash(k)
	root, added := setNode(m.root, 0, h, k, v)
	m.root = root
	if added {
		m.n++
	}
	return m
}

func setNode[K comparable, V any](n *pnode[K, V], shift uint, h uint64, k K, v V) (*pnode[K, V], bool) {
	if n == nil {
		return &pnode[K, V]{bitmap: slotOf(h, shift), kids: []pslot[K, V]{{leaf: &pleaf[K, V]{hash: h, kvs: []pkv[K, V]{{k, v}}}}}}, true
	}
	bit := slotOf(h, shift)
	i := n.pos(bit)
	out := &pnode[K, V]{bitmap: n.bitmap | bit}
	if n.bitmap&bit == 0 {
		out.kids = make([]pslot[K, V], 0, len(n.kids)+1)
		out.kids = append(append(append(out.kids, n.kids[:i]...), pslot[K, V]{leaf: &pleaf[K, V]{hash: h, kvs: []pkv[K, V]{{k, v}}}}), n.kids[i:]...)
		return out, true
	}
	out.kids = append([]pslot[K, V](nil), n.kids...)
	s := n.kids[i]
	added := false
	switch {
	case s.node != nil:
		out.kids[i].node, added = setNode(s.node, shift+pbits, h, k, v)
	case s.leaf.hash == h:
		kvs := make([]pkv[K, V], 0, len(s.leaf.kvs)+1)
		added = true
		for _, kv := range s.leaf.kvs {
			if kv.k == k {
				kv.v, added = v, false
			}
			kvs = append(kvs, kv)
		}
		if added {
			kvs = append(kvs, pkv[K, V]{k, v})
		}
		out.kids[i].leaf = &pleaf[K, V]{hash: h, kvs: kvs}
	default:
		// two hashes share this slot: push the old leaf one level down
		// (they differ at some level, at the latest the last one)
		sub := &pnode[K, V]{bitmap: slotOf(s.leaf.hash, shift+pbits), kids: []pslot[K, V]{{leaf: s.leaf}}}
		out.kids[i] = pslot[K, V]{}
		out.kids[i].node, added = setNode(sub, shift+pbits, h, k, v)
	}
	return out, added
}

// del returns m without k.
func (m pmap[K, V]) del(k K) pmap[K, V] {
	if m.root == nil {
		return m
	}
	root, removed := delNode(m.root, 0, m.hash(k), k)
	if removed {
		m.root = root
		m.n--
	}
	return m
}

// delNode returns n without k (nil when nothing is left) and whether k was
// there; n itself is not changed.
func delNode[K comparable, V any](n *pnode[K, V], shift uint, h uint64, k K) (*pnode[K, V], bool) {
	bit := slotOf(h, shift)
	if n.bitmap&bit == 0 {
		return n, false
	}
	i := n.pos(bit)
	s := n.kids[i]
	var repl pslot[K, V]
	switch {
	case s.node != nil:
		sub, removed := delNode(s.node, shift+pbits, h, k)
		if !removed {
			return n, false
		}
		repl.node = sub
		// a subtree left with one leaf becomes that leaf
		if sub != nil && len(sub.kids) == 1 && sub.kids[0].leaf != nil {
			repl = pslot[K, V]{leaf: sub.kids[0].leaf}
		}
	case s.leaf.hash == h:
		at := -1
		for j, kv := range s.leaf.kvs {
			if kv.k == k {
				at = j
			}
		}
		if at < 0 {
			return n, false
		}
		if len(s.leaf.kvs) > 1 {
			kvs := append(append([]pkv[K, V](nil), s.leaf.kvs[:at]...), s.leaf.kvs[at+1:]...)
			repl.leaf = &pleaf[K, V]{hash: h, kvs: kvs}
		}
	default:
		return n, false
	}
	if repl.node == nil && repl.leaf == nil {
		if len(n.kids) == 1 {
			return nil, true
		}
		out := &pnode[K, V]{bitmap: n.bitmap &^ bit, kids: make([]pslot[K, V], 0, len(n.kids)-1)}
		out.kids = append(append(out.kids, n.kids[:i]...), n.kids[i+1:]...)
		return out, true
	}
	out := &pnode[K, V]{bitmap: n.bitmap, kids: append([]pslot[K, V](nil), n.kids...)}
	out.kids[i] = repl
	return out, true
}

// pmapOf builds a map from a Go map in one pass (no path copies).
func pmapOf[K comparable, V any](src map[K]V, hash func(K) uint64) pmap[K, V] {
	kvs := make([]pkv[K, V], 0, len(src))
	for k, v := range src {
		kvs = append(kvs, pkv[K, V]{k, v})
	}
	m, _ := pmapItems(kvs, hash, &pslab[K, V]{})
	return m
}

// hidx is an item of a build: the hash of a key and where the key is in
// the build's source slice. It holds no pointer, so partitioning items
// moves 16 bytes and costs the garbage collector nothing.
type hidx struct {
	h uint64
	i int32
}

// hidxOf hashes the keys of src.
func hidxOf[K comparable, E any](src []pkv[K, E], hash func(K) uint64, buf []hidx) []hidx {
	if cap(buf) < len(src) {
		buf = make([]hidx, 0, len(src))
	}
	buf = buf[:0]
	for i, kv := range src {
		buf = append(buf, hidx{hash(kv.k), int32(i)})
	}
	return buf
}

// pslab holds the arrays a build carves its nodes, slots, leaves and
// pairs from, so that a build costs a few allocations in all rather than
// some per node. Several builds may share one slab (the address maps of
// every port). What a build carved is never written again; a later set
// or del copies the nodes it changes.
type pslab[K comparable, V any] struct {
	nodes  []pnode[K, V]
	slots  []pslot[K, V]
	leaves []pleaf[K, V]
	kvs    []pkv[K, V]
	// bufs are the buffers of a build; builds that do not nest may share
	// them (nil: the slab's own)
	bufs *hbufs
}

// hbufs are the item buffers of a build.
type hbufs struct{ items, scratch []hidx }

// take carves k elements from *slab, starting a new array when it is
// full (the old one stays as it is for what was carved from it).
func take[S any](slab *[]S, k int) []S {
	s := *slab
	if cap(s)-len(s) < k {
		s = make([]S, 0, max(k, 2*cap(s), 16))
	}
	l := len(s)
	*slab = s[:l+k]
	return s[l : l+k : l+k]
}

// pmapItems builds a map from pairs; ok is false when a key is there
// twice.
func pmapItems[K comparable, V any](src []pkv[K, V], hash func(K) uint64, slab *pslab[K, V]) (m pmap[K, V], ok bool) {
	b := pbuilder[K, V, V]{slab: slab, src: src, val: func(v V) V { return v }}
	m = b.build(hash)
	return m, !b.dup
}

// pmapGroup builds a map of the distinct keys of src: the value of a key
// is mk of the positions in src of its pairs, in src's order (mk must not
// keep the slice it is given).
func pmapGroup[K comparable, E, V any](src []pkv[K, E], hash func(K) uint64, slab *pslab[K, V], mk func(K, []hidx) V) pmap[K, V] {
	b := pbuilder[K, E, V]{slab: slab, src: src, mk: mk}
	return b.build(hash)
}

// pbuilder is one build of a map of the keys of src: with mk, each key
// is grouped (pmapGroup), else each pair is one entry of value val(v)
// (pmapItems).
type pbuilder[K comparable, E, V any] struct {
	slab *pslab[K, V]
	src  []pkv[K, E]
	mk   func(K, []hidx) V
	val  func(E) V
	dup  bool
}

// build partitions the items level by level (a stable counting sort), so
// the items of a key keep src's order.
func (b *pbuilder[K, E, V]) build(hash func(K) uint64) pmap[K, V] {
	m := pmap[K, V]{hash: hash}
	if len(b.src) == 0 {
		return m
	}
	slab := b.slab
	if slab.bufs == nil {
		slab.bufs = &hbufs{}
	}
	bufs := slab.bufs
	items := hidxOf(b.src, hash, bufs.items)
	if cap(bufs.scratch) < len(items) {
		bufs.scratch = make([]hidx, len(items))
	}
	before := len(slab.kvs)
	m.root = b.node(items, bufs.scratch[:len(items)], 0)
	m.n = len(slab.kvs) - before
	bufs.items = items
	return m
}

// leaf appends to slab.kvs the pairs of g, items that share one hash.
func (b *pbuilder[K, E, V]) leaf(g []hidx) {
	src, slab := b.src, b.slab
	if b.mk == nil {
		for j, it := range g {
			for _, prev := range g[:j] {
				b.dup = b.dup || src[prev.i].k == src[it.i].k
			}
			slab.kvs = append(slab.kvs, pkv[K, V]{src[it.i].k, b.val(src[it.i].v)})
		}
		return
	}
	k0 := src[g[0].i].k
	var others []K // nearly always one key
	for _, it := range g[1:] {
		if k := src[it.i].k; k != k0 && !slices.Contains(others, k) {
			others = append(others, k)
		}
	}
	if len(others) == 0 {
		slab.kvs = append(slab.kvs, pkv[K, V]{k0, b.mk(k0, g)})
		return
	}
	for _, k := range append([]K{k0}, others...) {
		var of []hidx
		for _, it := range g {
			if src[it.i].k == k {
				of = append(of, it)
			}
		}
		slab.kvs = append(slab.kvs, pkv[K, V]{k, b.mk(k, of)})
	}
}

// node builds the node of items at shift; scratch (as long as items) is
// free to use, and the children use what is left of items.
func (b *pbuilder[K, E, V]) node(items, scratch []hidx, shift uint) *pnode[K, V] {
	var count [33]int
	for _, it := range items {
		count[(it.h>>shift)&31+1]++
	}
	n := &take(&b.slab.nodes, 1)[0]
	for idx := range 32 {
		if count[idx+1] > 0 {
			n.bitmap |= 1 << idx
		}
		count[idx+1] += count[idx]
	}
	pos := count
	for _, it := range items {
		idx := (it.h >> shift) & 31
		scratch[pos[idx]] = it
		pos[idx]++
	}
	n.kids = take(&b.slab.slots, bits.OnesCount32(n.bitmap))[:0]
	for idx := range 32 {
		lo, hi := count[idx], count[idx+1]
		if lo == hi {
			continue
		}
		g := scratch[lo:hi]
		same := true
		for _, it := range g[1:] {
			if it.h != g[0].h {
				same = false
				break
			}
		}
		if !same {
			n.kids = append(n.kids, pslot[K, V]{node: b.node(g, items[lo:hi], shift+pbits)})
			continue
		}
		at := len(b.slab.kvs)
		b.leaf(g)
		l := &take(&b.slab.leaves, 1)[0]
		*l = pleaf[K, V]{hash: g[0].h, kvs: b.slab.kvs[at:len(b.slab.kvs):len(b.slab.kvs)]}
		n.kids = append(n.kids, pslot[K, V]{leaf: l})
	}
	return n
}

// The hash functions (internal/hash64: no seed, keys come from the Admin
// API, and equal hashes only make a leaf longer).

func hashString(s string) uint64 { return hash64.String(s) }

func hashPort(p uint16) uint64 { return hash64.Mix(uint64(p) + 1) }

func hashPrefix(p netip.Prefix) uint64 {
	b := p.Addr().As16()
	var hi, lo uint64
	for i := range 8 {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[8+i])
	}
	fam := uint64(4)
	if p.Addr().Is6() {
		fam = 6
	}
	return hash64.Mix(hi ^ hash64.Mix(lo^hash64.Mix(uint64(p.Bits())<<8|fam)))
}

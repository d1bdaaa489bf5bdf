package router

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Entry is one route of a table: its filters, its place in the match order
// and the caller's value (the data path stores its compiled route there).
type Entry[T any] struct {
	*Route
	// Seq is the place in APISIX's match order: of the routes that pass,
	// the one with the lowest Seq wins, as the first in APISIX's list
	// does. Seqs are unique within a table.
	Seq    int64
	Target T
}

// list is a set of entries by ascending Seq, in chunks of at most
// chunkMax, so that a change copies one chunk and the chunk index rather
// than every entry (10,000 routes without a server_addr share one list).
// It is never changed in place once it is in a table.
type list[T any] struct {
	chunks [][]*Entry[T]
	n      int
}

const chunkMax = 256

func bySeq[T any](e *Entry[T], seq int64) int { return cmp.Compare(e.Seq, seq) }

// listOf chunks entries that are in Seq order.
func listOf[T any](entries []*Entry[T]) list[T] {
	var c chunker[T]
	return c.list(entries)
}

// chunker makes lists whose chunk indexes share one array (a build makes
// one list per prefix: one allocation each would be most of its cost).
type chunker[T any] struct{ arena [][]*Entry[T] }

func (c *chunker[T]) list(entries []*Entry[T]) list[T] {
	l := list[T]{n: len(entries)}
	if len(entries) == 0 {
		return l
	}
	l.chunks = take(&c.arena, (len(entries)+chunkMax/2-1)/(chunkMax/2))
	for i := range l.chunks {
		k := min(len(entries), chunkMax/2)
		l.chunks[i] = entries[:k:k]
		entries = entries[k:]
	}
	return l
}

// chunkFor is the chunk that holds seq or would: the first whose last
// entry is not below it, else the last one.
func (l list[T]) chunkFor(seq int64) int {
	i, _ := slices.BinarySearchFunc(l.chunks, seq, func(c []*Entry[T], seq int64) int {
		return cmp.Compare(c[len(c)-1].Seq, seq)
	})
	return min(i, len(l.chunks)-1)
}

// with returns a new list with e in its place.
func (l list[T]) with(e *Entry[T]) list[T] {
	if l.n == 0 {
		return list[T]{chunks: [][]*Entry[T]{{e}}, n: 1}
	}
	i := l.chunkFor(e.Seq)
	c := l.chunks[i]
	j, _ := slices.BinarySearchFunc(c, e.Seq, bySeq[T])
	nc := make([]*Entry[T], 0, len(c)+1)
	nc = append(append(append(nc, c[:j]...), e), c[j:]...)
	chunks := make([][]*Entry[T], 0, len(l.chunks)+1)
	chunks = append(chunks, l.chunks[:i]...)
	if len(nc) > chunkMax {
		h := len(nc) / 2
		chunks = append(chunks, nc[:h:h], nc[h:])
	} else {
		chunks = append(chunks, nc)
	}
	return list[T]{chunks: append(chunks, l.chunks[i+1:]...), n: l.n + 1}
}

// without returns a new list without e.
func (l list[T]) without(e *Entry[T]) list[T] {
	if l.n == 0 {
		return l
	}
	i := l.chunkFor(e.Seq)
	c := l.chunks[i]
	j, ok := slices.BinarySearchFunc(c, e.Seq, bySeq[T])
	if !ok || c[j] != e {
		return l
	}
	if l.n == 1 {
		return list[T]{}
	}
	chunks := make([][]*Entry[T], 0, len(l.chunks))
	chunks = append(chunks, l.chunks[:i]...)
	if len(c) > 1 {
		nc := make([]*Entry[T], 0, len(c)-1)
		chunks = append(chunks, append(append(nc, c[:j]...), c[j+1:]...))
	}
	return list[T]{chunks: append(chunks, l.chunks[i+1:]...), n: l.n - 1}
}

// Table is an immutable match index over stream routes. Put and Delete
// return a new table and leave the old one as it was, sharing everything
// the change did not touch: one route's change costs what that route is
// indexed under, not the whole table, and connections that hold the old
// table keep matching against it.
type Table[T any] struct {
	byID pmap[string, *Entry[T]]

	// the routes without sni, by dimension
	plain plainIndex[T]

	// sni groups: exact names, wildcard suffixes (".test.com") and "*".
	exact, suffix pmap[string, list[T]]
	star          list[T]
	sniRoutes     int
	// nonDot counts the suffixes that do not start with a dot ("*foo.com"
	// routes); while it is 0 only label boundaries need a lookup.
	nonDot int
}

// plainIndex indexes the routes without sni by port and then by
// address, twice: port → remote address and port → local address (port 0
// holds the routes without a port filter). A query looks up its own port
// and port 0 in both, and scans the smaller candidate set.
type plainIndex[T any] struct {
	byRemote, byLocal pmap[uint16, *addrIndex[T]]
	count             int
}

// addrIndex finds the routes whose prefix contains an address: one list
// per prefix, the prefix lengths in use (at most 33 + 129), and the routes
// without filter. It is immutable.
type addrIndex[T any] struct {
	lists pmap[netip.Prefix, list[T]]
	bits  []bitsUse
	any   list[T]
}

// bitsUse is a prefix length in use and how many prefixes have it; key
// is the length, plus 1000 for IPv6 (/32 of v6 is not /32 of v4).
type bitsUse struct{ key, n int }

func bitsKey(p netip.Prefix) int {
	if p.Addr().Is6() {
		return p.Bits() + 1000
	}
	return p.Bits()
}

func (ai *addrIndex[T]) with(p netip.Prefix, e *Entry[T]) *addrIndex[T] {
	out := &addrIndex[T]{lists: pmap[netip.Prefix, list[T]]{hash: hashPrefix}}
	if ai != nil {
		*out = *ai
	}
	if !p.IsValid() {
		out.any = out.any.with(e)
		return out
	}
	l, ok := out.lists.get(p)
	if !ok {
		out.bits = slices.Clone(out.bits)
		key := bitsKey(p)
		if i := slices.IndexFunc(out.bits, func(b bitsUse) bool { return b.key == key }); i >= 0 {
			out.bits[i].n++
		} else {
			out.bits = append(out.bits, bitsUse{key, 1})
		}
	}
	out.lists = out.lists.set(p, l.with(e))
	return out
}

// without returns ai without e under p, nil when nothing is left.
func (ai *addrIndex[T]) without(p netip.Prefix, e *Entry[T]) *addrIndex[T] {
	out := *ai
	if !p.IsValid() {
		out.any = out.any.without(e)
	} else if l, ok := out.lists.get(p); ok {
		if l = l.without(e); l.n > 0 {
			out.lists = out.lists.set(p, l)
		} else {
			out.lists = out.lists.del(p)
			key := bitsKey(p)
			out.bits = slices.Clone(out.bits)
			i := slices.IndexFunc(out.bits, func(b bitsUse) bool { return b.key == key })
			if out.bits[i].n--; out.bits[i].n == 0 {
				out.bits = slices.Delete(out.bits, i, i+1)
			}
		}
	}
	if out.lists.len() == 0 && out.any.n == 0 {
		return nil
	}
	return &out
}

// candidates calls fn with every list of routes whose filter contains a,
// and returns their total length.
func (ai *addrIndex[T]) candidates(a netip.Addr, fn func(list[T])) int {
	if ai == nil {
		return 0
	}
	n := ai.any.n
	if n > 0 {
		fn(ai.any)
	}
	if !a.IsValid() {
		return n
	}
	is6 := a.Is6()
	for _, b := range ai.bits {
		bits := b.key
		if bits >= 1000 {
			if !is6 {
				continue
			}
			bits -= 1000
		} else if is6 {
			continue
		}
		p, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		if l, _ := ai.lists.get(p); l.n > 0 {
			n += l.n
			fn(l)
		}
	}
	return n
}

func (p plainIndex[T]) with(e *Entry[T]) plainIndex[T] {
	ai, _ := p.byRemote.get(e.ServerPort)
	p.byRemote = p.byRemote.set(e.ServerPort, ai.with(e.RemoteAddr, e))
	ai, _ = p.byLocal.get(e.ServerPort)
	p.byLocal = p.byLocal.set(e.ServerPort, ai.with(e.ServerAddr, e))
	p.count++
	return p
}

func (p plainIndex[T]) without(e *Entry[T]) plainIndex[T] {
	for _, ix := range []struct {
		m      *pmap[uint16, *addrIndex[T]]
		prefix netip.Prefix
	}{{&p.byRemote, e.RemoteAddr}, {&p.byLocal, e.ServerAddr}} {
		ai, _ := ix.m.get(e.ServerPort)
		if ai = ai.without(ix.prefix, e); ai != nil {
			*ix.m = ix.m.set(e.ServerPort, ai)
		} else {
			*ix.m = ix.m.del(e.ServerPort)
		}
	}
	p.count--
	return p
}

// sni kinds
const (
	sniExact = iota
	sniSuffix
	sniStar
)

// sniKey classifies one sni value: an exact name, a suffix ("*.x" gives
// ".x"; "*x" gives "x", a suffix match on the reversed string as APISIX's
// radix tree does) or "*".
func sniKey(r *Route, s string) (kind int, key string, dot bool, err error) {
	switch {
	case s == "*":
		return sniStar, "", true, nil
	case strings.HasPrefix(s, "*."):
		if len(s) < 3 {
			return 0, "", false, fmt.Errorf("route %s: invalid sni %q", r.ID, s)
		}
		return sniSuffix, s[1:], true, nil
	case strings.HasPrefix(s, "*"):
		return sniSuffix, s[1:], false, nil
	}
	return sniExact, s, true, nil
}

// eachSNI calls fn once per distinct sni value of r.
func eachSNI(r *Route, fn func(kind int, key string, dot bool) error) error {
	for i, s := range r.SNIs {
		if slices.Contains(r.SNIs[:i], s) {
			continue
		}
		kind, key, dot, err := sniKey(r, s)
		if err != nil {
			return err
		}
		if err := fn(kind, key, dot); err != nil {
			return err
		}
	}
	return nil
}

func checkEntry(r *Route) error {
	return eachSNI(r, func(int, string, bool) error { return nil })
}

func emptyTable[T any]() *Table[T] {
	t := &Table[T]{}
	t.byID.hash = hashString
	t.exact.hash, t.suffix.hash = hashString, hashString
	t.plain.byRemote.hash, t.plain.byLocal.hash = hashPort, hashPort
	return t
}

// New builds a table from entries, in any order (Seq decides). It builds
// every map in one pass from slices in Seq order, carving nodes and lists
// from a few shared arrays: its cost is a partition of 16-byte items, not
// one path copy or one allocation per route.
func New[T any](entries []*Entry[T]) (*Table[T], error) {
	bySeq := func(a, b *Entry[T]) int { return cmp.Compare(a.Seq, b.Seq) }
	sorted := entries
	if !slices.IsSortedFunc(sorted, bySeq) {
		sorted = slices.Clone(entries)
		slices.SortStableFunc(sorted, bySeq)
	}
	n := len(sorted)
	type ekv[K comparable] = pkv[K, *Entry[T]]
	byID := make([]ekv[string], 0, n)
	plainByPort := make([]ekv[uint16], 0, n) // the plain routes, by port
	var exact, suffix []ekv[string]
	var star []*Entry[T]
	remotes, locals := 0, 0 // the plain routes with a remote or local address filter
	t := emptyTable[T]()
	for _, e := range sorted {
		byID = append(byID, ekv[string]{e.ID, e})
		if len(e.SNIs) == 0 {
			plainByPort = append(plainByPort, ekv[uint16]{e.ServerPort, e})
			if e.RemoteAddr.IsValid() {
				remotes++
			}
			if e.ServerAddr.IsValid() {
				locals++
			}
			continue
		}
		t.sniRoutes++
		err := eachSNI(e.Route, func(kind int, key string, dot bool) error {
			switch kind {
			case sniStar:
				star = append(star, e)
			case sniSuffix:
				suffix = append(suffix, ekv[string]{key, e})
				if !dot {
					t.nonDot++
				}
			default:
				exact = append(exact, ekv[string]{key, e})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	plain := len(plainByPort)
	t.plain.count = plain
	var seen [1 << 16 / 64]uint64 // the ports in use
	ports := 0
	for _, kv := range plainByPort {
		w, bit := kv.k/64, uint64(1)<<(kv.k%64)
		if seen[w]&bit == 0 {
			seen[w] |= bit
			ports++
		}
	}
	// a list per prefix, per port (twice) and per sni key, of chunkMax/2
	// at most
	c := &chunker[T]{arena: make([][]*Entry[T], 0, 2*ports+remotes+locals+len(exact)+len(suffix)+2*n/(chunkMax/2)+2)}
	vals := make([]*Entry[T], 0, 2*plain+len(exact)+len(suffix))
	// the builds that do not nest share their item buffers
	bufs := &hbufs{items: make([]hidx, 0, n), scratch: make([]hidx, n)}
	var ok bool
	if t.byID, ok = pmapItems(byID, hashString, &pslab[string, *Entry[T]]{bufs: bufs,
		nodes: make([]pnode[string, *Entry[T]], 0, n/4+1), slots: make([]pslot[string, *Entry[T]], 0, n+n/4+1),
		leaves: make([]pleaf[string, *Entry[T]], 0, n), kvs: make([]pkv[string, *Entry[T]], 0, n),
	}); !ok {
		return nil, errors.New("a route id is listed twice")
	}
	np := remotes + locals
	prefixes := &pslab[netip.Prefix, list[T]]{bufs: bufs,
		nodes: make([]pnode[netip.Prefix, list[T]], 0, np/4+1), slots: make([]pslot[netip.Prefix, list[T]], 0, np+np/4+1),
		leaves: make([]pleaf[netip.Prefix, list[T]], 0, np), kvs: make([]pkv[netip.Prefix, list[T]], 0, np),
	}
	buf := make([]ekv[netip.Prefix], 0, max(remotes, locals))
	anys := make([]*Entry[T], 0, plain)
	indexes := make([]addrIndex[T], 0, 2*ports)
	// bits holds the prefix lengths of every index; those of the index
	// being built are bits[from:]
	bits := make([]bitsUse, 0, 16)
	from := 0
	mkList := func(p netip.Prefix, es []hidx) list[T] {
		key := bitsKey(p)
		if i := slices.IndexFunc(bits[from:], func(b bitsUse) bool { return b.key == key }); i >= 0 {
			bits[from+i].n++
		} else {
			bits = append(bits, bitsUse{key, 1})
		}
		return carve(c, &vals, buf, es)
	}
	// index is the address index of one port's routes (items, positions
	// in plainByPort in Seq order) by the address filter remote or local
	index := func(items []hidx, remote bool) *addrIndex[T] {
		buf, anys = buf[:0], anys[:0]
		for _, it := range items {
			e := plainByPort[it.i].v
			p := e.ServerAddr
			if remote {
				p = e.RemoteAddr
			}
			if p.IsValid() {
				buf = append(buf, ekv[netip.Prefix]{p, e})
			} else {
				anys = append(anys, e)
			}
		}
		from = len(bits)
		lists := pmap[netip.Prefix, list[T]]{hash: hashPrefix}
		if len(buf) > 0 {
			lists = pmapGroup(buf, hashPrefix, prefixes, mkList)
		}
		at := len(vals)
		vals = append(vals, anys...)
		ai := &take(&indexes, 1)[0]
		*ai = addrIndex[T]{lists: lists, any: c.list(vals[at:len(vals):len(vals)])}
		if len(bits) > from {
			ai.bits = bits[from:len(bits):len(bits)]
		}
		return ai
	}
	// one grouping by port gives both maps: byRemote as it is built,
	// byLocal from the pairs it leaves
	portSlab := func() *pslab[uint16, *addrIndex[T]] {
		return &pslab[uint16, *addrIndex[T]]{
			nodes: make([]pnode[uint16, *addrIndex[T]], 0, ports/4+1), slots: make([]pslot[uint16, *addrIndex[T]], 0, ports+ports/4+1),
			leaves: make([]pleaf[uint16, *addrIndex[T]], 0, ports), kvs: make([]pkv[uint16, *addrIndex[T]], 0, ports),
		}
	}
	byLocal := make([]pkv[uint16, *addrIndex[T]], 0, ports)
	t.plain.byRemote = pmapGroup(plainByPort, hashPort, portSlab(), func(port uint16, items []hidx) *addrIndex[T] {
		byLocal = append(byLocal, pkv[uint16, *addrIndex[T]]{port, index(items, false)})
		return index(items, true)
	})
	local := portSlab()
	local.bufs = bufs
	t.plain.byLocal, _ = pmapItems(byLocal, hashPort, local)
	strs := &pslab[string, list[T]]{bufs: bufs}
	t.exact = pmapGroup(exact, hashString, strs, func(_ string, es []hidx) list[T] { return carve(c, &vals, exact, es) })
	t.suffix = pmapGroup(suffix, hashString, strs, func(_ string, es []hidx) list[T] { return carve(c, &vals, suffix, es) })
	t.star = c.list(star)
	return t, nil
}

// carve copies the entries at items of src (in Seq order) to the end of
// *vals and chunks them into a list.
func carve[K comparable, T any](c *chunker[T], vals *[]*Entry[T], src []pkv[K, *Entry[T]], items []hidx) list[T] {
	at := len(*vals)
	for _, it := range items {
		*vals = append(*vals, src[it.i].v)
	}
	v := *vals
	return c.list(v[at:len(v):len(v)])
}

// Put returns a table with e added, or replacing the entry with its ID.
// The caller keeps Seqs unique; t is unchanged.
func (t *Table[T]) Put(e *Entry[T]) (*Table[T], error) {
	if err := checkEntry(e.Route); err != nil {
		return nil, err
	}
	out := *t
	if old, ok := out.byID.get(e.ID); ok {
		out.remove(old)
	}
	out.add(e)
	return &out, nil
}

// Delete returns a table without the entry id; t is unchanged.
func (t *Table[T]) Delete(id string) *Table[T] {
	old, ok := t.byID.get(id)
	if !ok {
		return t
	}
	out := *t
	out.remove(old)
	return &out
}

// add indexes e (checked by checkEntry) into t, a fresh copy.
func (t *Table[T]) add(e *Entry[T]) {
	t.byID = t.byID.set(e.ID, e)
	if len(e.SNIs) == 0 {
		t.plain = t.plain.with(e)
		return
	}
	t.sniRoutes++
	_ = eachSNI(e.Route, func(kind int, key string, dot bool) error {
		switch kind {
		case sniStar:
			t.star = t.star.with(e)
		case sniSuffix:
			l, _ := t.suffix.get(key)
			t.suffix = t.suffix.set(key, l.with(e))
			if !dot {
				t.nonDot++
			}
		default:
			l, _ := t.exact.get(key)
			t.exact = t.exact.set(key, l.with(e))
		}
		return nil
	})
}

// remove takes e out of t, a fresh copy.
func (t *Table[T]) remove(e *Entry[T]) {
	t.byID = t.byID.del(e.ID)
	if len(e.SNIs) == 0 {
		t.plain = t.plain.without(e)
		return
	}
	t.sniRoutes--
	drop := func(m pmap[string, list[T]], key string) pmap[string, list[T]] {
		l, _ := m.get(key)
		if l = l.without(e); l.n == 0 {
			return m.del(key)
		}
		return m.set(key, l)
	}
	_ = eachSNI(e.Route, func(kind int, key string, dot bool) error {
		switch kind {
		case sniStar:
			t.star = t.star.without(e)
		case sniSuffix:
			t.suffix = drop(t.suffix, key)
			if !dot {
				t.nonDot--
			}
		default:
			t.exact = drop(t.exact, key)
		}
		return nil
	})
}

// Len is the number of routes in the table.
func (t *Table[T]) Len() int { return t.byID.len() }

// Get returns the entry id, or nil.
func (t *Table[T]) Get(id string) *Entry[T] {
	e, _ := t.byID.get(id)
	return e
}

// Each calls fn for every entry, in no particular order.
func (t *Table[T]) Each(fn func(*Entry[T])) {
	t.byID.each(func(_ string, e *Entry[T]) { fn(e) })
}

// Match returns the first route that matches q, in APISIX priority order,
// or nil.
func (t *Table[T]) Match(q Query) *Entry[T] {
	if q.SNI != "" && t.sniRoutes > 0 {
		if e := t.matchSNI(q); e != nil {
			return e
		}
	}
	return t.matchPlain(q)
}

func passes(r *Route, q Query) bool {
	if r.ServerPort != 0 && r.ServerPort != q.Port {
		return false
	}
	if r.RemoteAddr.IsValid() && !r.RemoteAddr.Contains(q.Remote) {
		return false
	}
	if r.ServerAddr.IsValid() && !r.ServerAddr.Contains(q.Local) {
		return false
	}
	return true
}

func firstPassing[T any](group list[T], q Query) *Entry[T] {
	for _, c := range group.chunks {
		for _, e := range c {
			if passes(e.Route, q) {
				return e
			}
		}
	}
	return nil
}

// matchSNI tries the exact group, then wildcard suffixes longest first,
// then "*" (the radix tree order of APISIX).
func (t *Table[T]) matchSNI(q Query) *Entry[T] {
	sni := q.SNI
	if g, _ := t.exact.get(sni); g.n > 0 {
		if e := firstPassing(g, q); e != nil {
			return e
		}
	}
	if t.suffix.len() > 0 {
		// candidate suffixes of sni, longest first: for "a.b.c" they are
		// "a.b.c" minus a prefix of at least one byte, ending at a label
		// boundary for "*." routes; APISIX's radix prefix match is on the
		// reversed string, so "*foo.com" matches "barfoo.com" too.
		dotOnly := t.nonDot == 0
		for i := 1; i < len(sni); i++ {
			if dotOnly && sni[i] != '.' {
				continue
			}
			if g, _ := t.suffix.get(sni[i:]); g.n > 0 {
				if e := firstPassing(g, q); e != nil {
					return e
				}
			}
		}
	}
	if t.star.n > 0 {
		return firstPassing(t.star, q)
	}
	return nil
}

// matchPlain finds the first non-sni route whose filters pass. It scans
// the smaller of two candidate sets, (port, remote address) or (port,
// local address), so many routes that differ in their port, their remote
// address or their local address cost the same as one.
func (t *Table[T]) matchPlain(q Query) *Entry[T] {
	p := &t.plain
	if p.count == 0 {
		return nil
	}
	none := func(list[T]) {}
	rAny, _ := p.byRemote.get(0)
	lAny, _ := p.byLocal.get(0)
	var rPort, lPort *addrIndex[T]
	if q.Port != 0 {
		rPort, _ = p.byRemote.get(q.Port)
		lPort, _ = p.byLocal.get(q.Port)
	}
	remoteN := rPort.candidates(q.Remote, none) + rAny.candidates(q.Remote, none)
	localN := lPort.candidates(q.Local, none) + lAny.candidates(q.Local, none)

	var best *Entry[T]
	consider := func(l list[T]) {
		for _, c := range l.chunks {
			for _, e := range c {
				if best != nil && e.Seq >= best.Seq {
					return // lists are ascending
				}
				if passes(e.Route, q) {
					best = e
					return
				}
			}
		}
	}
	if remoteN <= localN {
		rPort.candidates(q.Remote, consider)
		rAny.candidates(q.Remote, consider)
	} else {
		lPort.candidates(q.Local, consider)
		lAny.candidates(q.Local, consider)
	}
	return best
}

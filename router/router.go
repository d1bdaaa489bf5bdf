// Package router matches a connection against the stream routes exactly as
// APISIX's ip_port router does (docs/apisix/stream-routes.md#matching-priority), with an index so that the cost
// of a match does not grow with the number of routes.
package router

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/caddy-apisix/stream/model"
)

// Route is one stream route's filters. Target is whatever the caller wants
// back from a match (the dispatcher stores its compiled route there).
type Route struct {
	ID string
	// RemoteAddr and ServerAddr are the address filters; the zero Prefix
	// means no filter.
	RemoteAddr, ServerAddr netip.Prefix
	// ServerPort is the port filter; 0 means none.
	ServerPort uint16
	// SNIs are the route's sni/snis values as written: exact names,
	// "*.suffix" (any number of labels) or "*".
	SNIs   []string
	Target any
}

// ParsePrefix parses an APISIX remote_addr/server_addr value with the
// parser the Admin API checks it with (model.ParseCIDROrIP). The empty
// string means no filter.
func ParsePrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	return model.ParseCIDROrIP(s)
}

// AddrPortOf converts a connection's net.Addr to a netip.AddrPort.
func AddrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	case nil:
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// NewQuery builds the query of a connection from its addresses (an IPv4
// address mapped into IPv6 matches as IPv4) and its server name.
func NewQuery(remote, local netip.AddrPort, sni string) Query {
	return Query{Remote: remote.Addr().Unmap(), Local: local.Addr().Unmap(), Port: local.Port(), SNI: sni}
}

// Query is what a connection offers for matching.
type Query struct {
	Remote, Local netip.Addr
	Port          uint16
	// SNI is the TLS server name (lowercased, no trailing dot), or
	// fallback_sni, or empty.
	SNI string
}

// Table is an immutable match index over an ordered route list.
type Table struct {
	routes []*Route

	// non-sni routes, by dimension; lists hold route positions ascending.
	plain plainIndex

	// sni groups: exact names, wildcard suffixes (".test.com") and "*".
	exact  map[string][]int32
	suffix map[string][]int32
	star   []int32
	hasSNI bool
	// dotOnly is true when every suffix starts with a dot ("*.x"
	// routes), so only label boundaries need a lookup.
	dotOnly bool
}

// plainIndex indexes the routes without sni by port and then by
// address, twice: port → remote address and port → local address (port 0
// holds the routes without a port filter). A query looks up its own port
// and port 0 in both, and scans the smaller candidate set.
type plainIndex struct {
	byRemote map[uint16]*addrIndex
	byLocal  map[uint16]*addrIndex
	count    int
}

func (p *plainIndex) add(r *Route, pos int32) {
	for _, ix := range []struct {
		m      map[uint16]*addrIndex
		prefix netip.Prefix
	}{{p.byRemote, r.RemoteAddr}, {p.byLocal, r.ServerAddr}} {
		ai := ix.m[r.ServerPort]
		if ai == nil {
			ai = &addrIndex{}
			ix.m[r.ServerPort] = ai
		}
		ai.add(ix.prefix, pos)
	}
	p.count++
}

// addrIndex finds the routes whose prefix contains an address: one map per
// prefix length in use (at most 33 + 129), plus the routes without filter.
type addrIndex struct {
	byBits map[int]map[netip.Prefix][]int32
	bits   []int // prefix lengths in use, for both families
	any    []int32
}

func (ai *addrIndex) add(p netip.Prefix, pos int32) {
	if !p.IsValid() {
		ai.any = append(ai.any, pos)
		return
	}
	if ai.byBits == nil {
		ai.byBits = map[int]map[netip.Prefix][]int32{}
	}
	key := p.Bits()
	if p.Addr().Is6() {
		key += 1000 // keep families apart: /32 of v6 is not /32 of v4
	}
	m := ai.byBits[key]
	if m == nil {
		m = map[netip.Prefix][]int32{}
		ai.byBits[key] = m
		ai.bits = append(ai.bits, key)
	}
	m[p] = append(m[p], pos)
}

// candidates calls fn with every list of routes whose filter contains a,
// and returns their total length.
func (ai *addrIndex) candidates(a netip.Addr, fn func([]int32)) int {
	if ai == nil {
		return 0
	}
	n := len(ai.any)
	if n > 0 {
		fn(ai.any)
	}
	if !a.IsValid() {
		return n
	}
	is6 := a.Is6()
	for _, key := range ai.bits {
		bits := key
		if key >= 1000 {
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
		if l := ai.byBits[key][p]; len(l) > 0 {
			n += len(l)
			fn(l)
		}
	}
	return n
}

// New builds a table; routes are in APISIX order (first match wins).
func New(routes []*Route) (*Table, error) {
	t := &Table{routes: routes, exact: map[string][]int32{}, suffix: map[string][]int32{}, dotOnly: true}
	t.plain.byRemote = map[uint16]*addrIndex{}
	t.plain.byLocal = map[uint16]*addrIndex{}
	for i, r := range routes {
		pos := int32(i)
		if len(r.SNIs) == 0 {
			t.plain.add(r, pos)
			continue
		}
		t.hasSNI = true
		seen := map[string]bool{}
		for _, s := range r.SNIs {
			if seen[s] {
				continue
			}
			seen[s] = true
			switch {
			case s == "*":
				t.star = append(t.star, pos)
			case strings.HasPrefix(s, "*."):
				suf := s[1:]
				if len(suf) < 2 {
					return nil, fmt.Errorf("route %s: invalid sni %q", r.ID, s)
				}
				t.suffix[suf] = append(t.suffix[suf], pos)
			case strings.HasPrefix(s, "*"):
				// "*foo.com" is a suffix match on "foo.com" in the radix tree
				suf := s[1:]
				t.suffix[suf] = append(t.suffix[suf], pos)
				t.dotOnly = false
			default:
				t.exact[s] = append(t.exact[s], pos)
			}
		}
	}
	return t, nil
}

// Len is the number of routes in the table.
func (t *Table) Len() int { return len(t.routes) }

// Match returns the first route that matches q, in APISIX priority order,
// or nil.
func (t *Table) Match(q Query) *Route {
	if q.SNI != "" && t.hasSNI {
		if r := t.matchSNI(q); r != nil {
			return r
		}
	}
	return t.matchPlain(q)
}

func (t *Table) passes(r *Route, q Query) bool {
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

func (t *Table) firstPassing(group []int32, q Query) *Route {
	for _, pos := range group {
		if r := t.routes[pos]; t.passes(r, q) {
			return r
		}
	}
	return nil
}

// matchSNI tries the exact group, then wildcard suffixes longest first,
// then "*" (the radix tree order of APISIX).
func (t *Table) matchSNI(q Query) *Route {
	sni := q.SNI
	if g := t.exact[sni]; g != nil {
		if r := t.firstPassing(g, q); r != nil {
			return r
		}
	}
	if len(t.suffix) > 0 {
		// candidate suffixes of sni, longest first: for "a.b.c" they are
		// "a.b.c" minus a prefix of at least one byte, ending at a label
		// boundary for "*." routes; APISIX's radix prefix match is on the
		// reversed string, so "*foo.com" matches "barfoo.com" too.
		for i := 1; i < len(sni); i++ {
			if t.dotOnly && sni[i] != '.' {
				continue
			}
			if g := t.suffix[sni[i:]]; g != nil {
				if r := t.firstPassing(g, q); r != nil {
					return r
				}
			}
		}
	}
	if t.star != nil {
		return t.firstPassing(t.star, q)
	}
	return nil
}

// matchPlain finds the first non-sni route whose filters pass. It scans
// the smaller of two candidate sets, (port, remote address) or (port,
// local address), so many routes that differ in their port, their remote
// address or their local address cost the same as one.
func (t *Table) matchPlain(q Query) *Route {
	p := &t.plain
	if p.count == 0 {
		return nil
	}
	none := func([]int32) {}
	rPort, rAny := p.byRemote[q.Port], p.byRemote[0]
	lPort, lAny := p.byLocal[q.Port], p.byLocal[0]
	if q.Port == 0 {
		rPort, lPort = nil, nil
	}
	remoteN := rPort.candidates(q.Remote, none) + rAny.candidates(q.Remote, none)
	localN := lPort.candidates(q.Local, none) + lAny.candidates(q.Local, none)

	best := int32(-1)
	consider := func(list []int32) {
		for _, pos := range list {
			if best >= 0 && pos >= best {
				return // lists are ascending
			}
			if t.passes(t.routes[pos], q) {
				best = pos
				return
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
	if best < 0 {
		return nil
	}
	return t.routes[best]
}

package balancer

import "github.com/caddy-apisix/stream/vars"

// Context carries one connection's stream variables, for chash keys, and
// the nodes already tried. The zero value is ready to use; a Context must
// not be shared between connections at the same time.
type Context struct {
	// Vars are the connection's stream variables; nil has none (a chash
	// key then falls back to an empty remote_addr).
	Vars *vars.Set

	// owner is the balancer the tried set belongs to; a Context handed to
	// another balancer (a new upstream version) starts afresh.
	owner *balancer
	tried bitset
}

// Reset forgets the nodes tried, so the Context can serve a new connection.
func (c *Context) Reset() {
	c.owner = nil
	c.tried.clear()
}

func (c *Context) claim(b *balancer) {
	if c.owner != b {
		c.owner = b
		c.tried.clear()
	}
}

// bitset is a set of node positions that needs no allocation for the
// first 256 nodes.
type bitset struct {
	lo   [4]uint64
	more []uint64
	n    int
}

func (s *bitset) has(i int) bool {
	w, bit := i>>6, uint64(1)<<(uint(i)&63)
	if w < len(s.lo) {
		return s.lo[w]&bit != 0
	}
	w -= len(s.lo)
	return w < len(s.more) && s.more[w]&bit != 0
}

func (s *bitset) add(i int) {
	s.n++
	w, bit := i>>6, uint64(1)<<(uint(i)&63)
	if w < len(s.lo) {
		s.lo[w] |= bit
		return
	}
	w -= len(s.lo)
	for len(s.more) <= w {
		s.more = append(s.more, 0)
	}
	s.more[w] |= bit
}

func (s *bitset) clear() {
	s.lo = [4]uint64{}
	clear(s.more)
	s.n = 0
}

// Package balancer picks upstream nodes for stream connections the way
// APISIX does (docs/apisix/upstreams.md#load-balancing): smooth weighted round robin, consistent
// hashing, least connections and peak EWMA, with priority tiers, retries
// that skip nodes already tried, and health filtering.
//
// A Balancer is built once per upstream version and shared by every
// connection; each connection carries its own Context.
package balancer

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// ErrNoNode is returned by Pick when no node is left to try.
var ErrNoNode = errors.New("no valid upstream node")

// Node is a dialable node of an upstream.
type Node struct {
	// Addr is host:port, with an IPv6 host bracketed.
	Addr string
	// Weight is the node's share of the traffic; 0 makes it a node used
	// only when no node with a positive weight is available in its tier.
	Weight int
	// Priority groups nodes in tiers; higher tiers are tried first.
	Priority int

	// idx is the node's position in its balancer, so Done finds its state
	// without a lookup.
	idx int
}

// Health tells whether a node is up. health.Checker implements it.
type Health interface {
	// Healthy reports whether the node at addr may be picked.
	Healthy(addr string) bool
}

// Balancer picks nodes for one upstream. It is safe for concurrent use.
type Balancer interface {
	// Pick returns the next node to try for this connection, excluding the
	// nodes already tried in ctx and the unhealthy ones (all nodes when all
	// are unhealthy). Higher priority tiers come first; a lower tier is
	// used only once every eligible node of the higher tiers was tried.
	// An upstream with a single node (except least_conn) always returns
	// that node, as APISIX does; the caller bounds retries. Pick returns
	// ErrNoNode when nothing is left. The Node is shared: do not modify it.
	Pick(ctx *Context) (*Node, error)
	// Done is called once for every node Pick returned, when the attempt
	// or the connection ends: rtt is the connect time and failed is true
	// when the connect failed. least_conn releases the connection, ewma
	// learns the latency. Call it on the Balancer that picked n.
	Done(n *Node, rtt time.Duration, failed bool)
}

// kind is the balancing algorithm.
type kind uint8

const (
	kindRoundRobin kind = iota
	kindCHash
	kindLeastConn
	kindEWMA
	// kindInvalid is a type APISIX cannot load: its multi-node Picks fail.
	kindInvalid
)

// balancer is the one implementation of Balancer; the algorithm-specific
// state lives in the field of its kind.
type balancer struct {
	kind   kind
	nodes  []Node
	tiers  []tier
	health Health
	// single is set for a one-node upstream that is not least_conn: the
	// node is always used (APISIX balancer.lua pick_server).
	single bool

	key  *hashKey   // chash
	bad  error      // kindInvalid: what every multi-node Pick returns
	mu   sync.Mutex // least_conn and ewma state
	lc   leastConn
	ewma ewma
}

// tier is the nodes of one priority.
type tier struct {
	priority int
	// idx are positions in balancer.nodes.
	idx []int
	// rr is the smooth weighted round robin state (roundrobin).
	rr *rrTier
	// ring and zeroRing are the hash rings of the positive-weight and the
	// weight-0 nodes (chash).
	ring, zeroRing *ring
}

// New builds the balancer of an upstream. typ is "" or "roundrobin",
// "chash", "least_conn" or "ewma"; hashOn and key configure chash (hashOn
// "" means "vars"). health may be nil, meaning every node is healthy.
//
// The upstream schema has no enum on type and a stream route's inline
// upstream is only schema-checked (apisix/admin/stream_routes.lua), so New
// accepts what APISIX stores and fails where APISIX fails, at pick time:
// another type gives a balancer whose Picks return "invalid balancer
// type: <type>" (a one-node upstream still uses its node, as
// apisix/balancer.lua pick_server does before loading the balancer), and
// a chash without key hashes remote_addr, the fallback of
// apisix/balancer/chash.lua fetch_chash_hash_key for a key with no value.
func New(typ, hashOn, key string, nodes []Node, health Health) (Balancer, error) {
	b := &balancer{health: health}
	switch typ {
	case "", "roundrobin":
		b.kind = kindRoundRobin
	case "chash":
		b.kind = kindCHash
		k, err := newHashKey(hashOn, key)
		if err != nil {
			return nil, err
		}
		b.key = k
	case "least_conn":
		b.kind = kindLeastConn
	case "ewma":
		b.kind = kindEWMA
	default:
		b.kind = kindInvalid
		b.bad = fmt.Errorf("invalid balancer type: %s", typ)
	}
	b.nodes = make([]Node, len(nodes))
	for i, n := range nodes {
		if n.Addr == "" {
			return nil, fmt.Errorf("node %d: empty address", i)
		}
		if n.Weight < 0 {
			return nil, fmt.Errorf("node %s: invalid weight %d", n.Addr, n.Weight)
		}
		n.idx = i
		b.nodes[i] = n
	}
	b.single = len(b.nodes) == 1 && b.kind != kindLeastConn
	b.buildTiers()
	switch b.kind {
	case kindRoundRobin:
		for i := range b.tiers {
			b.tiers[i].rr = newRRTier(b.nodes, b.tiers[i].idx)
		}
	case kindCHash:
		for i := range b.tiers {
			b.tiers[i].ring, b.tiers[i].zeroRing = newRings(b.nodes, b.tiers[i].idx)
		}
	case kindLeastConn:
		b.lc.active = make([]int64, len(b.nodes))
	case kindEWMA:
		b.ewma.init(len(b.nodes))
	}
	return b, nil
}

// buildTiers groups the nodes by priority, highest first, keeping the
// configured order inside a tier.
func (b *balancer) buildTiers() {
	pos := map[int]int{}
	for i, n := range b.nodes {
		t, ok := pos[n.Priority]
		if !ok {
			t = len(b.tiers)
			pos[n.Priority] = t
			b.tiers = append(b.tiers, tier{priority: n.Priority})
		}
		b.tiers[t].idx = append(b.tiers[t].idx, i)
	}
	sort.SliceStable(b.tiers, func(i, j int) bool { return b.tiers[i].priority > b.tiers[j].priority })
}

// Pick implements Balancer.
func (b *balancer) Pick(ctx *Context) (*Node, error) {
	ctx.claim(b)
	if len(b.nodes) == 0 {
		return nil, ErrNoNode
	}
	if b.single {
		ctx.tried.add(0)
		return &b.nodes[0], nil
	}
	if b.kind == kindInvalid {
		return nil, b.bad
	}
	s := selector{b: b, ctx: ctx}
	s.scanHealth()
	var h uint64
	if b.kind == kindCHash {
		h = b.key.sum(ctx)
	}
	for ti := range b.tiers {
		t := &b.tiers[ti]
		s.enter(t)
		var i int
		switch b.kind {
		case kindRoundRobin:
			i = t.rr.pick(t.idx, &s)
		case kindCHash:
			if !s.any(t) {
				continue // spare a walk over the whole ring
			}
			r := t.ring
			if s.zero {
				r = t.zeroRing
			}
			i = r.pick(h, &s)
		case kindLeastConn:
			i = b.lc.pick(&b.mu, t.idx, &s)
		case kindEWMA:
			i = b.ewma.pick(&b.mu, t.idx, &s)
		}
		if i >= 0 {
			ctx.tried.add(i)
			return &b.nodes[i], nil
		}
	}
	return nil, ErrNoNode
}

// Done implements Balancer.
func (b *balancer) Done(n *Node, rtt time.Duration, failed bool) {
	if n == nil || n.idx < 0 || n.idx >= len(b.nodes) || &b.nodes[n.idx] != n {
		return // not one of ours (e.g. from an older upstream version)
	}
	switch b.kind {
	case kindLeastConn:
		b.lc.done(&b.mu, n.idx)
	case kindEWMA:
		b.ewma.done(&b.mu, n.idx, rtt, failed)
	}
}

// selector decides which nodes of a tier are candidates for one Pick.
type selector struct {
	b   *balancer
	ctx *Context
	// allUp is set without a health source or when every node is
	// unhealthy, in which case APISIX uses them all.
	allUp bool
	// up holds the health of the first 256 nodes, read once per Pick;
	// later nodes are asked on demand.
	up [4]uint64
	// zero is set when the tier has no available positive-weight node, so
	// its weight-0 nodes are used, each with weight 1.
	zero bool
}

// scanHealth reads the nodes' health once for this Pick.
func (s *selector) scanHealth() {
	h := s.b.health
	if h == nil {
		s.allUp = true
		return
	}
	for i := range s.b.nodes {
		if !h.Healthy(s.b.nodes[i].Addr) {
			continue
		}
		if i >= len(s.up)*64 {
			return // at least one node is up; the rest is asked on demand
		}
		s.up[i>>6] |= 1 << (uint(i) & 63)
	}
	s.allUp = s.up == [4]uint64{}
}

func (s *selector) healthy(i int) bool {
	if s.allUp {
		return true
	}
	if i < len(s.up)*64 {
		return s.up[i>>6]&(1<<(uint(i)&63)) != 0
	}
	return s.b.health.Healthy(s.b.nodes[i].Addr)
}

// enter prepares the selector for tier t. As in APISIX, the weight-0 rule
// looks at healthy nodes before the tried ones are removed: a tier whose
// positive nodes were all tried does not fall back to its weight-0 nodes.
func (s *selector) enter(t *tier) {
	s.zero = true
	for _, i := range t.idx {
		if s.b.nodes[i].Weight > 0 && s.healthy(i) {
			s.zero = false
			return
		}
	}
}

// ok reports whether node i may be picked now.
func (s *selector) ok(i int) bool {
	if (s.b.nodes[i].Weight == 0) != s.zero {
		return false
	}
	return !s.ctx.tried.has(i) && s.healthy(i)
}

// any reports whether tier t has a candidate.
func (s *selector) any(t *tier) bool {
	for _, i := range t.idx {
		if s.ok(i) {
			return true
		}
	}
	return false
}

// weight is node i's effective weight in the current tier.
func (s *selector) weight(i int) int64 {
	if s.zero {
		return 1
	}
	return int64(s.b.nodes[i].Weight)
}

// Interface guards
var _ Balancer = (*balancer)(nil)

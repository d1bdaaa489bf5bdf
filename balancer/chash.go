package balancer

import (
	"slices"
	"strconv"

	"github.com/caddy-apisix/stream/internal/hash64"
)

const (
	// pointsPerWeight is the number of ring points per weight unit, as
	// resty.chash's CONSISTENT_POINTS.
	pointsPerWeight = 160
	// maxPoints bounds a ring's size; larger weights are scaled down.
	maxPoints = 1 << 18
)

// ring is a consistent hash ring: sorted points and the node owning each.
type ring struct {
	points []uint64
	owners []int32
}

// newRings builds the ring of the tier's positive-weight nodes and the
// ring of its weight-0 nodes (each counted as weight 1), used when no
// positive-weight node of the tier is available.
func newRings(nodes []Node, idx []int) (pos, zero *ring) {
	var p, z []int
	for _, i := range idx {
		if nodes[i].Weight > 0 {
			p = append(p, i)
		} else {
			z = append(z, i)
		}
	}
	return buildRing(nodes, p, false), buildRing(nodes, z, true)
}

func buildRing(nodes []Node, members []int, unit bool) *ring {
	weight := func(i int) int {
		if unit {
			return 1
		}
		return nodes[i].Weight
	}
	total := 0
	for _, i := range members {
		total += weight(i) * pointsPerWeight
	}
	type point struct {
		h     uint64
		owner int32
	}
	pts := make([]point, 0, min(total, maxPoints+len(members)))
	var buf []byte
	for _, i := range members {
		n := weight(i) * pointsPerWeight
		if total > maxPoints {
			n = max(1, int(int64(n)*maxPoints/int64(total)))
		}
		// A point's hash depends only on the node address and its number,
		// so adding or removing a node leaves the other points in place.
		for j := range n {
			buf = append(buf[:0], nodes[i].Addr...)
			buf = append(buf, '#')
			buf = strconv.AppendInt(buf, int64(j), 10)
			pts = append(pts, point{hash64.Mix(hash64.AddBytes(hash64.Offset, buf)), int32(i)})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return int(a.owner - b.owner)
	})
	r := &ring{points: make([]uint64, len(pts)), owners: make([]int32, len(pts))}
	for k, p := range pts {
		r.points[k], r.owners[k] = p.h, p.owner
	}
	return r
}

// pick returns the first candidate at or after h on the ring, or -1.
// Walking on past tried and unhealthy nodes keeps the choice stable: a
// retry of the same key always goes to the same next node.
func (r *ring) pick(h uint64, s *selector) int {
	n := len(r.points)
	if n == 0 {
		return -1
	}
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.points[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	rejected := int32(-1)
	for k := range n {
		o := r.owners[(lo+k)%n]
		if o == rejected {
			continue
		}
		if s.ok(int(o)) {
			return int(o)
		}
		rejected = o
	}
	return -1
}

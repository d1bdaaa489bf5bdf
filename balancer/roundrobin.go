package balancer

import (
	"math/rand/v2"
	"sync"
)

// maxWarmup bounds the random number of steps a new round robin runs
// before its first pick, so that instances start at different positions.
const maxWarmup = 1024

// rrTier is nginx's smooth weighted round robin over one tier: every pick
// adds each candidate's weight to its current weight, takes the highest
// and subtracts the total from it. Over any window of sum(weights) picks
// each node is chosen exactly weight times, evenly spread.
type rrTier struct {
	mu  sync.Mutex
	cur []int64 // current weight, by position in the tier
}

// newRRTier builds the state of the tier idx and advances it a random
// number of steps (APISIX starts resty.roundrobin at a random node).
func newRRTier(nodes []Node, idx []int) *rrTier {
	t := &rrTier{cur: make([]int64, len(idx))}
	total := 0
	zero := true
	for _, i := range idx {
		total += nodes[i].Weight
		if nodes[i].Weight > 0 {
			zero = false
		}
	}
	if zero {
		total = len(idx)
	}
	if total > maxWarmup {
		total = maxWarmup
	}
	if total <= 1 {
		return t
	}
	for range rand.IntN(total) {
		best, sum := -1, int64(0)
		for k, i := range idx {
			w := int64(nodes[i].Weight)
			if zero {
				w = 1
			}
			if w == 0 {
				continue
			}
			t.cur[k] += w
			sum += w
			if best < 0 || t.cur[k] > t.cur[best] {
				best = k
			}
		}
		t.cur[best] -= sum
	}
	return t
}

// pick returns the node position chosen among the candidates of s, or -1.
func (t *rrTier) pick(idx []int, s *selector) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	best, sum := -1, int64(0)
	for k, i := range idx {
		if !s.ok(i) {
			continue
		}
		w := s.weight(i)
		t.cur[k] += w
		sum += w
		if best < 0 || t.cur[k] > t.cur[best] {
			best = k
		}
	}
	if best < 0 {
		return -1
	}
	t.cur[best] -= sum
	return idx[best]
}

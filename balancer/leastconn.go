package balancer

import "sync"

// leastConn picks the node with the lowest (active+1)/weight, as APISIX's
// balancer/least_conn.lua. Pick counts a connection in, Done counts it out.
type leastConn struct {
	active []int64
	// next rotates the scan start so equal scores are shared out.
	next int
}

func (l *leastConn) pick(mu *sync.Mutex, idx []int, s *selector) int {
	mu.Lock()
	defer mu.Unlock()
	best := -1
	var bestA, bestW int64
	n := len(idx)
	start := l.next % n
	l.next++
	for k := range n {
		i := idx[(start+k)%n]
		if !s.ok(i) {
			continue
		}
		a, w := l.active[i]+1, s.weight(i)
		// a/w < bestA/bestW without division.
		if best < 0 || a*bestW < bestA*w {
			best, bestA, bestW = i, a, w
		}
	}
	if best >= 0 {
		l.active[best]++
	}
	return best
}

func (l *leastConn) done(mu *sync.Mutex, i int) {
	mu.Lock()
	if l.active[i] > 0 {
		l.active[i]--
	}
	mu.Unlock()
}

package balancer

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

const (
	// decayTime is the EWMA time constant (APISIX balancer/ewma.lua).
	decayTime = 10 * time.Second
	// failPenalty is the latency a failed connect counts as, so that a
	// node refusing connections quickly does not look fast.
	failPenalty = time.Second
)

// ewma is APISIX's balancer/ewma.lua with the peak rule: the latency of
// each node decays with time towards the samples Done feeds, jumps up at
// once on a slower sample, and reads decay towards zero while a node is
// idle. Pick draws two random candidates and keeps the one with the lower
// ewma*(active+1) ("power of two choices").
type ewma struct {
	value   []float64 // seconds
	touched []int64   // clock reading of the last sample, 0 = never
	active  []int64
	base    time.Time
	// clock returns a positive, monotonic reading in nanoseconds; tests
	// replace it.
	clock func() int64
}

func (e *ewma) init(n int) {
	e.value = make([]float64, n)
	e.touched = make([]int64, n)
	e.active = make([]int64, n)
	e.base = time.Now()
	e.clock = func() int64 { return int64(time.Since(e.base)) + 1 }
}

// decayed is node i's latency at time now, decayed as if a zero sample
// had arrived (ewma.lua score()).
func (e *ewma) decayed(i int, now int64) float64 {
	if e.touched[i] == 0 {
		return e.value[i]
	}
	td := float64(max(now-e.touched[i], 0))
	return e.value[i] * math.Exp(-td/float64(decayTime))
}

func (e *ewma) score(i int, now int64) float64 {
	return e.decayed(i, now) * float64(e.active[i]+1)
}

func (e *ewma) pick(mu *sync.Mutex, idx []int, s *selector) int {
	mu.Lock()
	defer mu.Unlock()
	c := 0
	for _, i := range idx {
		if s.ok(i) {
			c++
		}
	}
	if c == 0 {
		return -1
	}
	r1, r2 := 0, -1
	if c > 1 {
		r1, r2 = rand.IntN(c), rand.IntN(c-1)
		if r2 >= r1 {
			r2++
		}
	}
	a, b, k := -1, -1, 0
	for _, i := range idx {
		if !s.ok(i) {
			continue
		}
		if k == r1 {
			a = i
		}
		if k == r2 {
			b = i
		}
		k++
	}
	if b >= 0 {
		now := e.clock()
		sa, sb := e.score(a, now), e.score(b, now)
		if sb < sa || (sb == sa && e.active[b] < e.active[a]) {
			a = b
		}
	}
	e.active[a]++
	return a
}

func (e *ewma) done(mu *sync.Mutex, i int, rtt time.Duration, failed bool) {
	if failed {
		rtt = max(rtt, failPenalty)
	}
	sample := max(rtt.Seconds(), 0)
	mu.Lock()
	defer mu.Unlock()
	if e.active[i] > 0 {
		e.active[i]--
	}
	now := e.clock()
	v := sample
	if e.touched[i] != 0 {
		td := float64(max(now-e.touched[i], 0))
		w := math.Exp(-td / float64(decayTime))
		v = e.value[i]*w + sample*(1-w)
		v = max(v, sample) // peak: a slower sample counts in full at once
	}
	e.value[i] = v
	e.touched[i] = now
}

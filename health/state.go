package health

import (
	"sync"
	"sync/atomic"
)

// state is a node's health as lua-resty-healthcheck keeps it: a healthy
// node with some failures is "mostly healthy" and still used; an
// unhealthy node with some successes is "mostly unhealthy" and not used.
type state int32

const (
	stateHealthy state = iota
	stateMostlyHealthy
	stateMostlyUnhealthy
	stateUnhealthy
)

// String is the status text of the control API.
func (s state) String() string {
	switch s {
	case stateHealthy:
		return "healthy"
	case stateMostlyHealthy:
		return "mostly_healthy"
	case stateMostlyUnhealthy:
		return "mostly_unhealthy"
	}
	return "unhealthy"
}

// up reports whether a node in state s may be picked.
func (s state) up() bool { return s <= stateMostlyHealthy }

// event is one observation of a node.
type event uint8

const (
	evNone event = iota // a probe status in neither list: not counted
	evSuccess
	evTCPFailure
	evTimeout
	evHTTPFailure
)

// Counters are a node's event counts since its last change of health,
// as the control API shows them.
type Counters struct {
	// Success counts successful probes (and passive successes).
	Success int `json:"success"`
	// TCPFailure counts failed connects and broken probe exchanges.
	TCPFailure int `json:"tcp_failure"`
	// TimeoutFailure counts probes and connects that timed out.
	TimeoutFailure int `json:"timeout_failure"`
	// HTTPFailure counts http(s) probes with an unhealthy status.
	HTTPFailure int `json:"http_failure"`
}

// counters is a node's health state machine.
type counters struct {
	mu sync.Mutex
	c  Counters
}

// record counts ev against limit, updates the node's state st and
// returns it before and after, following lua-resty-healthcheck's incr_counter: a success is not
// counted for a healthy node nor a failure for an unhealthy one; reaching
// the limit flips the health and clears the counters; otherwise the first
// contrary event makes the node "mostly" healthy or unhealthy.
func (k *counters) record(st *atomic.Int32, ev event, limit int) (cur, next state) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cur = state(st.Load())
	next = k.next(cur, ev, limit)
	st.Store(int32(next))
	return cur, next
}

// next counts ev and returns the new state; k.mu is held.
func (k *counters) next(cur state, ev event, limit int) state {
	if ev == evNone || (ev == evSuccess && cur == stateHealthy) || (ev != evSuccess && cur == stateUnhealthy) {
		return cur
	}
	var n int
	switch ev {
	case evSuccess:
		k.c.Success++
		n = k.c.Success
	case evTCPFailure:
		k.c.TCPFailure++
		n = k.c.TCPFailure
	case evTimeout:
		k.c.TimeoutFailure++
		n = k.c.TimeoutFailure
	case evHTTPFailure:
		k.c.HTTPFailure++
		n = k.c.HTTPFailure
	}
	switch {
	case n >= limit && ev == evSuccess:
		k.c = Counters{}
		return stateHealthy
	case n >= limit:
		k.c = Counters{}
		return stateUnhealthy
	case cur == stateHealthy:
		return stateMostlyHealthy
	case cur == stateUnhealthy:
		return stateMostlyUnhealthy
	}
	return cur
}

func (k *counters) get() Counters {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.c
}

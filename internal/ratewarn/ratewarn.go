// Package ratewarn limits a repeating warning to one line per interval,
// counting the events in between: the proxy's refused sessions, failed
// handshakes and unmatched connections, and the etcd store's failed
// syncs.
package ratewarn

import (
	"sync/atomic"
	"time"
)

// Every is the least time between two warnings of one kind.
const Every = 10 * time.Second

// Limiter lets one warning through per Every and counts the rest. The
// zero value is ready.
type Limiter struct {
	next       atomic.Int64 // Unix nanoseconds
	suppressed atomic.Int64
}

// Allow reports whether to warn now, and how many events (this one
// included) the warning stands for.
func (w *Limiter) Allow(now time.Time) (int64, bool) {
	n := w.suppressed.Add(1)
	next := w.next.Load()
	if now.UnixNano() < next || !w.next.CompareAndSwap(next, now.Add(Every).UnixNano()) {
		return 0, false
	}
	w.suppressed.Add(-n)
	return n, true
}

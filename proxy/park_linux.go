//go:build linux && !portable

package proxy

import (
	"errors"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddy-apisix/stream/rawsock"
)

// Parking idle directions (docs/performance.md, change 16).
//
// A raw direction waiting for input is a goroutine parked in its
// source's RawConn.Read: a 2 KiB stack and a goroutine descriptor, about
// 5 of the 8 kB an idle connection cost. A direction that moved no byte
// between two checks of its link's timer (parkAfter apart) is asked to
// park: the sweep sets its source's read deadline in the past, which
// wakes the goroutine from the netpoller; the goroutine clears the
// deadline, hands its source descriptor to the runtime's parker (one
// epoll instance, itself polled by Go's netpoller as the UDP server's
// is) and exits. When the descriptor has input, a FIN, a hang-up or an
// error, the parker starts a new goroutine that runs the same copier
// from where it stopped: the half-close, the counters, the idle timer,
// the stage choice, the access log and the metrics are the copier's and
// the link's, untouched by parking. A parked direction holds no stage
// (it parks only from the read, when nothing is in flight), so a
// connection with both directions parked holds no goroutine, buffer or
// pipe: its sockets, the session and the link's small structs.
//
// The parker watches a descriptor once (EPOLLONESHOT) and removes it
// when it wakes the direction, or when abort takes the direction back:
// a direction that is not parked is never in the epoll set, so the
// close that follows the end of both directions never leaves a watch
// for the descriptor number's next owner.

// Direction states (rawCopier.state). Moves between them happen under
// the link's mu, except stDone, which only the direction's own goroutine
// sets.
const (
	// stRun: a goroutine runs the copy.
	stRun int32 = iota
	// stAsk: the sweep asked the direction to park and set its source's
	// read deadline in the past; the goroutine parks when it sees it.
	stAsk
	// stParked: the parker watches the source; no goroutine.
	stParked
	// stDone: the direction has ended.
	stDone
)

// parker is the epoll instance that watches parked directions, created
// with the first one to park, and the directions it watches by id. Ids
// are never reused while one is watched, so a stale event (its direction
// since resumed by abort, or ended) finds nothing or a direction parked
// under another id.
type parker struct {
	mu   sync.Mutex
	ep   *rawsock.Epoll
	raw  syscall.RawConn
	byID map[uint32]*rawCopier
	next uint32
	// parks counts the directions parked since the last collection,
	// which is scheduled once they reach collectAfter (see collect);
	// collecting is whether one is, seen the parks it saw last, waits
	// how often it waited for more, and cycles the number of GC cycles
	// at the last park
	parks, collectAfter, seen, waits int
	collecting                       bool
	collectTimer                     *time.Timer
	collectWait                      time.Duration
	cycles                           uint64
}

// open makes the epoll instance and starts its loop; the caller holds
// p.mu. It fails when no descriptor is left: directions then keep their
// goroutine, and the next sweep tries again.
func (p *parker) open() bool {
	ep, err := rawsock.NewEpoll("tcp-parked")
	if err != nil {
		return false
	}
	raw, err := ep.File.SyscallConn()
	if err != nil {
		_ = ep.File.Close()
		return false
	}
	p.ep, p.raw, p.byID = ep, raw, map[uint32]*rawCopier{}
	p.collectAfter = minCollectParks
	go p.loop()
	return true
}

// add watches c's source once; the caller holds c's link's mu.
func (p *parker) add(c *rawCopier) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ep == nil && !p.open() {
		return false
	}
	for {
		p.next++
		if p.next != 0 && p.byID[p.next] == nil {
			break
		}
	}
	if p.ep.AddOnce(c.srcFD, p.next) != nil {
		return false
	}
	c.parkID = p.next
	p.byID[p.next] = c
	p.parks++
	p.cycles = gcCycles()
	if !p.collecting && p.parks >= p.collectAfter {
		p.collecting, p.seen, p.waits = true, p.parks, 0
		p.collectWait = max(time.Duration(c.l.stages.parkAfter.Load()), minCollectDelay)
		if p.collectTimer == nil {
			p.collectTimer = time.AfterFunc(p.collectWait, p.collect)
		} else {
			p.collectTimer.Reset(p.collectWait)
		}
	}
	return true
}

// minCollectParks is the fewest parked directions collect runs for (512
// KiB of stacks); minCollectDelay the least it waits for more to park.
const (
	minCollectParks = 256
	minCollectDelay = 100 * time.Millisecond
)

// collect runs a GC once enough directions parked since the last one. A
// goroutine that exits keeps its stack: Go frees the stacks of dead
// goroutines only in the next GC (markrootFreeGStacks, runtime/mgcmark.go),
// and an idle proxy allocates nothing that would start one before the
// runtime's forced GC, two minutes later. The parked directions' stacks
// are collected on terms like GOGC's for the heap: once they amount to an
// eighth of the live heap (2 KiB per direction), which bounds the cost of
// the collection per byte it frees, and not when the runtime ran a whole
// GC after the last of them parked anyway. It waits until the directions stop parking for a sweep period
// (for at most 8), so that a burst of connections going idle together
// is collected in one GC. The runtime's scavenger then returns the freed
// stacks to the system.
func (p *parker) collect() {
	p.mu.Lock()
	if p.parks != p.seen && p.waits < 8 {
		p.seen, p.waits = p.parks, p.waits+1
		p.collectTimer.Reset(p.collectWait)
		p.mu.Unlock()
		return
	}
	cycles := p.cycles
	p.mu.Unlock()
	// a cycle that ended after the last park may have begun before the
	// goroutine exited; the one after it cannot have
	if gcCycles() < cycles+2 {
		runtime.GC()
	}
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	after := minCollectParks
	if live[0].Value.Kind() == metrics.KindUint64 {
		after = max(after, int(live[0].Value.Uint64()/(8*2048)))
	}
	p.mu.Lock()
	p.parks, p.collectAfter, p.collecting = 0, after, false
	p.mu.Unlock()
}

// gcCycles is the number of GC cycles completed so far.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// remove stops watching c's source; the caller holds c's link's mu and
// c is parked (so its descriptor is still open).
func (p *parker) remove(c *rawCopier) {
	p.mu.Lock()
	_ = p.ep.Remove(c.srcFD)
	delete(p.byID, c.parkID)
	p.mu.Unlock()
}

// loop wakes the directions whose sources are ready. The epoll
// descriptor is never closed: the runtime lives as long as the process.
func (p *parker) loop() {
	wait := p.ep.Wait
	ids := make([]uint32, 0, 64)
	for {
		if err := p.raw.Read(wait); err != nil {
			return
		}
		ids = p.ep.Ready(ids[:0])
		for _, id := range ids {
			p.mu.Lock()
			c := p.byID[id]
			p.mu.Unlock()
			if c != nil {
				c.wake(id)
			}
		}
	}
}

// Parked is how many directions of TCP connections the parker holds
// without a goroutine.
func (cs *copyStages) Parked() int {
	p := &cs.parker
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byID)
}

// wake resumes c, parked under id, in a new goroutine, unless abort took
// it back first.
func (c *rawCopier) wake(id uint32) {
	l := c.l
	l.mu.Lock()
	if c.state.Load() != stParked || c.parkID != id {
		l.mu.Unlock()
		return
	}
	l.stages.parker.remove(c)
	c.state.Store(stRun)
	// the direction runs for at least one whole period before the sweep
	// may ask it again, and the timer, which waited for the idle timeout
	// while everything was parked, sweeps again
	c.seen = -1
	left := l.idle - time.Duration(time.Now().UnixNano()-l.last.Load())
	l.timer.Reset(l.checkAfter(max(left, 0)))
	l.mu.Unlock()
	go c.run()
}

// run copies until the direction ends, or parks it when the sweep asked:
// the goroutine then exits, and the parker runs run again when the source
// is ready. On EOF it half-closes dst (see link.run); on an error or the
// idle timeout it aborts both directions.
func (c *rawCopier) run() {
	l := c.l
	var err error
	for {
		err = c.copy()
		if !c.parkable(err) {
			break
		}
		switch c.park() {
		case parked:
			return
		case parkRefused:
			continue // no parker: copy on in this goroutine
		}
		break // aborted
	}
	c.state.Store(stDone)
	defer l.finish()
	if err == io.EOF && (l.pending.Load() == 1 || c.closeWrite() == nil) {
		return
	}
	l.abort()
}

// parkable reports whether copy returned because the sweep asked c to
// park: the read deadline it set in the past, with nothing in flight
// (the read runs only with an empty stage).
func (c *rawCopier) parkable(err error) bool {
	return c.state.Load() == stAsk && errors.Is(err, os.ErrDeadlineExceeded) && c.err == nil && !c.eof && c.off >= c.end
}

// parkHook, set by tests only, runs in park twice: before it takes the
// link's mu (watched false), and once the parker watches the source but
// before the direction counts as parked (watched true), when input that
// arrives must still wake the direction.
var parkHook atomic.Pointer[func(c *rawCopier, watched bool)]

// park results
const (
	parked = iota
	parkRefused
	parkAborted
)

// park hands c's source to the parker. Under the link's mu, abort either
// came first (aborted: the deadline error is abort's too, and stands) or
// comes after c is parked, and then takes it back (unpark).
func (c *rawCopier) park() int {
	l := c.l
	h := parkHook.Load()
	if h != nil {
		(*h)(c, false)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.aborted {
		return parkAborted
	}
	// the sweep's deadline must not fail the resumed copy's first read
	_ = c.srcConn.SetReadDeadline(time.Time{})
	if !l.stages.parker.add(c) {
		c.state.Store(stRun)
		return parkRefused
	}
	if h != nil {
		(*h)(c, true)
	}
	c.state.Store(stParked)
	return parked
}

// sweep asks every running direction that moved no byte since the last
// check to park, and reports whether one still runs; the caller holds
// l.mu. Its cost is two atomic loads per direction: the copy itself only
// counts its bytes, as it did before parking existed.
func (l *link) sweep() (running bool) {
	for _, c := range l.raw {
		if c == nil {
			continue
		}
		switch c.state.Load() {
		case stRun:
			running = true
			if n := c.count.Load(); n != c.seen {
				c.seen = n
				continue
			}
			if c.state.CompareAndSwap(stRun, stAsk) {
				// wakes the goroutine waiting in the netpoller, or fails
				// its next read if it is busy writing
				_ = c.srcConn.SetReadDeadline(time.Unix(1, 0))
			}
		case stAsk:
			running = true
		}
	}
	return running
}

// unpark marks l aborted, so that no direction parks from now on, and
// takes its parked directions back from the parker; abort resumes them,
// to fail on the deadlines it sets and end as any aborted direction.
func (l *link) unpark() (woken [2]*rawCopier) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.aborted = true
	for i, c := range l.raw {
		if c != nil && c.state.Load() == stParked {
			l.stages.parker.remove(c)
			c.state.Store(stRun)
			woken[i] = c
		}
	}
	return woken
}

//go:build linux && !portable

package proxy

import (
	"errors"
	"io"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddy-apisix/stream/rawsock"
)

// Parking idle directions (docs/performance.md, change 19).
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
// pipe: its sockets, the session and the link's small structs. The
// stacks the exited goroutines leave go back to the system in collect.
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
	// which is scheduled once they reach minCollectParks (see collect);
	// collecting is whether one is, seen the parks it saw last and
	// waits how often it waited for more
	parks, seen, waits int
	collecting         bool
	collectTimer       *time.Timer
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
	if !p.collecting && p.parks >= minCollectParks {
		p.collecting, p.seen, p.waits = true, p.parks, 0
		if p.collectTimer == nil {
			p.collectTimer = time.AfterFunc(collectQuiet, p.collect)
		} else {
			p.collectTimer.Reset(collectQuiet)
		}
	}
	return true
}

// minCollectParks is how many directions must park before collect
// looks at the stacks; collectQuiet how long no direction may have parked
// before it does (it waits at most ten times that).
const (
	minCollectParks = 256
	collectQuiet    = 100 * time.Millisecond
)

// collect gives the stacks of the goroutines that parked directions left
// back to the system. A goroutine that exits keeps its stack: Go frees
// the stacks of dead goroutines only in a GC (markrootFreeGStacks,
// runtime/mgcmark.go), an idle proxy allocates nothing that would start
// one before the runtime's forced GC two minutes later, and even then
// the scavenger keeps the freed memory mapped: it returns only what
// exceeds about 1.1 times the heap goal, and stacks are not part of the
// heap in use that goal is made of. So collect runs debug.FreeOSMemory (a
// GC, then all free memory back to the system) when the dead goroutines'
// stacks (the stack memory beyond 2 KiB per live goroutine) amount to an
// eighth of the live heap and at least 512 KiB: that bounds its cost (a
// GC, about proportional to the live heap) per byte it frees, and skips
// it when the exited goroutines were reused by new ones (connections
// that come and go while others park), which a count of parks alone
// would not tell. It waits until no direction parked for collectQuiet,
// so that a burst of connections going idle together is collected once.
func (p *parker) collect() {
	p.mu.Lock()
	if p.parks != p.seen && p.waits < 10 {
		p.seen, p.waits = p.parks, p.waits+1
		p.collectTimer.Reset(collectQuiet)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	if dead, live := deadStacks(); dead >= max(512<<10, live/8) {
		debug.FreeOSMemory()
	}
	p.mu.Lock()
	p.parks, p.collecting = 0, false
	p.mu.Unlock()
}

// deadStacks estimates the stack memory held by dead goroutines: the
// stack memory beyond the starting size of each live goroutine (so a
// high estimate when live goroutines have grown theirs); live is the
// live heap.
func deadStacks() (dead, live uint64) {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/sched/goroutines:goroutines"},
		{Name: "/gc/stack/starting-size:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	metrics.Read(s)
	for _, x := range s {
		if x.Value.Kind() != metrics.KindUint64 {
			return 0, 0
		}
	}
	stacks, used := s[0].Value.Uint64(), s[1].Value.Uint64()*s[2].Value.Uint64()
	if stacks > used {
		dead = stacks - used
	}
	return dead, s[3].Value.Uint64()
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

// parked is how many directions of TCP connections the parker holds
// without a goroutine.
func (cs *copyStages) parked() int {
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
	left := l.idle - l.quiet()
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
	for i := range l.raw {
		c := &l.raw[i]
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
	for i := range l.raw {
		if c := &l.raw[i]; l.rawOK && c.state.Load() == stParked {
			l.stages.parker.remove(c)
			c.state.Store(stRun)
			woken[i] = c
		}
	}
	return woken
}

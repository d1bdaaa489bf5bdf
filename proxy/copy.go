package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-apisix/stream/rawsock"
)

// Counters are the bytes a proxied connection moved, kept by the proxy
// itself since raw-copied bytes never pass through a reader it could count.
type Counters struct {
	// Sent is client → upstream, Received is upstream → client.
	Sent, Received atomic.Int64
}

// CopyMode is how a plain TCP connection's bytes are moved on Linux (see
// rawCopier in copy_linux.go). Connections with TLS on either side, and
// every connection on other systems and in the portable build, take the
// buffered read/write loop whatever the mode.
type CopyMode int32

// Copy modes, stream_proxy.tcp_copy.
const (
	// CopyAuto chooses CopyBuffer or CopySplice by measuring both on
	// this host once per process, when a config first sets it
	// (calibrate_linux.go, docs/performance.md, change 15); until the
	// measurement ends, and wherever it cannot run, it is CopyBuffer.
	CopyAuto CopyMode = iota
	// CopyBuffer reads into and writes from a pooled 32 KiB buffer.
	CopyBuffer
	// CopySplice moves bytes with splice(2) through a pooled pipe,
	// without copying them through user space.
	CopySplice
)

// ParseCopyMode reads a tcp_copy value: "auto" (or ""), "buffer" or
// "splice".
func ParseCopyMode(s string) (CopyMode, error) {
	switch s {
	case "", "auto":
		return CopyAuto, nil
	case "buffer":
		return CopyBuffer, nil
	case "splice":
		return CopySplice, nil
	}
	return CopyAuto, fmt.Errorf("unknown copy mode %q (want auto, buffer or splice)", s)
}

// String is the mode's tcp_copy value.
func (m CopyMode) String() string {
	switch m {
	case CopyBuffer:
		return "buffer"
	case CopySplice:
		return "splice"
	}
	return "auto"
}

// CopyCalibration is what tcp_copy auto measured: the CPU time a whole
// pipeline (sender, the proxy's copy, receiver) took per 10^9 bytes with
// each stage, and the stage chosen.
type CopyCalibration struct {
	Buffer, Splice time.Duration
	Chosen         CopyMode
}

// copyStages is what the raw copies of all connections share: the
// splice stage's pipes, tcp_copy auto's measurement and the parker that
// holds idle directions without a goroutine. The runtime's is the
// process's one (package live owns the runtime).
type copyStages struct {
	pipes rawsock.PipePool
	// calibrated is tcp_copy auto's measurement, nil until it ended;
	// calibration starts it once
	calibrated  atomic.Pointer[CopyCalibration]
	calibration sync.Once
	// parkAfter is how long, in nanoseconds, a raw direction must move
	// nothing before it parks (park_linux.go); 0 never parks. The
	// runtime's is defaultParkAfter; tests shorten it.
	parkAfter atomic.Int64
	parker    parker
}

// defaultParkAfter is the runtime's parkAfter: a direction that moved no
// byte for one to two seconds gives its goroutine up. Bulk and
// request/response traffic moves bytes far more often and never parks;
// an idle connection costs one sweep of its timer per second until both
// directions are parked, then none until its idle timeout.
const defaultParkAfter = time.Second

// splice reports whether a direction in mode m stages its next chunk in
// a pipe. Auto asks each time a direction takes a stage (only while
// nothing is in flight), so connections opened before the measurement
// ended take its choice from their next chunk on.
func (cs *copyStages) splice(m CopyMode) bool {
	if m == CopyAuto {
		c := cs.calibrated.Load()
		return c != nil && c.Chosen == CopySplice
	}
	return m == CopySplice
}

// SetTCPCopy sets the copy mode of new TCP connections; live ones keep
// theirs. The first CopyAuto starts the process's one measurement of the
// stages (calibrate_linux.go), in the background: a config that sets
// another mode never pays for it.
func (rt *Runtime) SetTCPCopy(m CopyMode) {
	rt.tcpCopy.Store(int32(m))
	if m == CopyAuto {
		rt.copies.calibration.Do(func() { go rt.calibrate() })
	}
}

// TCPCopy is the copy mode SetTCPCopy last set.
func (rt *Runtime) TCPCopy() CopyMode { return CopyMode(rt.tcpCopy.Load()) }

// CopyCalibration is tcp_copy auto's measurement, nil before it has ended
// (or when it could not run).
func (rt *Runtime) CopyCalibration() *CopyCalibration { return rt.copies.calibrated.Load() }

// pump copies both ways between client and upstream until both directions
// have ended, honouring half-close (EOF on one side becomes a FIN on the
// other), and gives up when nothing moved in either direction for idle.
// It closes neither connection; the caller closes both once it returns
// (the last direction to end leaves its FIN to that close, see run). The
// caller's goroutine copies one direction; see startPump for a variant
// that returns at once.
func pump(client, upstream net.Conn, idle time.Duration, mode CopyMode, stages *copyStages, c *Counters) {
	new(link).pump(client, upstream, idle, mode, stages, c)
}

// pump is the package's pump on l, which a session embeds.
func (l *link) pump(client, upstream net.Conn, idle time.Duration, mode CopyMode, stages *copyStages, c *Counters) {
	var wg sync.WaitGroup
	wg.Add(1)
	l.init(client, upstream, idle, mode, stages, c, funcEnder(wg.Done))
	go l.run(1)
	l.run(0)
	wg.Wait()
}

// startPump is pump in two goroutines of its own: it returns at once and
// calls done, which closes both connections, when both directions have
// ended. A caller that hands the connection over this way need not keep
// its own (deeper) goroutine stack alive for as long as the connection is
// idle.
func startPump(client, upstream net.Conn, idle time.Duration, mode CopyMode, stages *copyStages, c *Counters, done func()) {
	new(link).start(client, upstream, idle, mode, stages, c, funcEnder(done))
}

// start is startPump on l, which a session embeds; done.linkDone runs
// after both directions.
func (l *link) start(client, upstream net.Conn, idle time.Duration, mode CopyMode, stages *copyStages, c *Counters, done linkEnder) {
	l.init(client, upstream, idle, mode, stages, c, done)
	go l.run(1)
	go l.run(0)
}

// linkEnder is told when both directions of a link have ended. A session
// is one (linkDone ends it), so that handing it to its own embedded link
// allocates nothing.
type linkEnder interface{ linkDone() }

// funcEnder is a function as a linkEnder.
type funcEnder func()

func (f funcEnder) linkDone() { f() }

// init prepares a connection's two directions; done runs after both.
// stages are the runtime's (Runtime.copies).
func (l *link) init(client, upstream net.Conn, idle time.Duration, mode CopyMode, stages *copyStages, c *Counters, done linkEnder) {
	l.a, l.b, l.idle, l.mode, l.stages, l.c, l.onDone = client, upstream, idle, mode, stages, c, done
	l.pending.Store(2)
	// deadlines left by the caller (preread, replay) must not cut the
	// copy short: from here on only the idle timer ends it
	_ = client.SetDeadline(time.Time{})
	_ = upstream.SetDeadline(time.Time{})
	l.rawOK = l.initRaw(&c.Sent, &c.Received)
	if l.rawOK {
		l.parkAfter = time.Duration(stages.parkAfter.Load())
	}
	l.touch()
	// under mu: a check due in parkAfter may run before AfterFunc has
	// returned, and it resets the timer under mu
	l.mu.Lock()
	l.timer = time.AfterFunc(l.checkAfter(idle), l.check)
	l.mu.Unlock()
}

// link is one proxied connection's shared state. One timer per connection
// enforces the idle timeout: the copy loops only record when bytes moved,
// which is far cheaper than re-arming socket deadlines per chunk.
type link struct {
	a, b   net.Conn
	idle   time.Duration
	mode   CopyMode
	stages *copyStages
	c      *Counters
	// parkAfter is stages.parkAfter for a raw link, 0 (never park) for
	// the others.
	parkAfter time.Duration
	// timer enforces the idle timeout and, while a direction of a raw
	// link may still park, runs the sweep every parkAfter.
	timer *time.Timer
	// mu orders parking against the sweep, the parker's wake-ups and
	// abort (park_linux.go); aborted is set, under mu, by the first
	// abort: from then on no direction parks.
	mu      sync.Mutex
	aborted bool
	// last is when bytes last moved, in nanoseconds since clockBase.
	last atomic.Int64
	// pending counts the directions still running; the last one to end
	// stops the timer and calls onDone.
	pending atomic.Int32
	done    atomic.Bool
	onDone  linkEnder
	// raw are the raw copies of both directions, client → upstream and
	// upstream → client, when both sides are plain TCP (rawOK)
	raw   [2]rawCopier
	rawOK bool
}

// finish records the end of one direction.
func (l *link) finish() {
	if l.pending.Add(-1) == 0 {
		l.done.Store(true)
		l.timer.Stop()
		l.onDone.linkDone()
	}
}

// clockBase is the origin of link.last: time.Since reads only the
// monotonic clock, where time.Now also reads the wall clock.
var clockBase = time.Now()

func (l *link) touch() { l.last.Store(int64(time.Since(clockBase))) }

// quiet is how long no byte has moved.
func (l *link) quiet() time.Duration { return time.Since(clockBase) - time.Duration(l.last.Load()) }

// check runs when the timer fires: it ends the connection if nothing
// moved for idle; otherwise it asks the directions that moved nothing
// since the last check to park (sweep), and waits for the rest of the
// period, or for parkAfter while a direction still runs.
func (l *link) check() {
	if l.done.Load() {
		return
	}
	quiet := l.quiet()
	if quiet >= l.idle {
		l.abort()
		return
	}
	l.mu.Lock()
	wait := l.idle - quiet
	if l.parkAfter > 0 && !l.aborted && l.sweep() {
		wait = min(wait, l.parkAfter)
	}
	l.timer.Reset(wait)
	l.mu.Unlock()
}

// checkAfter is how long the timer waits when the idle timeout is left
// away: no longer than parkAfter on a link whose directions may park.
func (l *link) checkAfter(left time.Duration) time.Duration {
	if l.parkAfter > 0 {
		return min(left, l.parkAfter)
	}
	return left
}

// abort wakes both directions: every blocked read and write fails, and a
// parked direction is resumed to fail the same way.
func (l *link) abort() {
	woken := l.unpark()
	past := time.Unix(1, 0)
	_ = l.a.SetDeadline(past)
	_ = l.b.SetDeadline(past)
	for _, c := range woken {
		if c != nil {
			go c.run()
		}
	}
}

// run moves one direction: 0 is client → upstream, 1 upstream → client.
// On EOF it half-closes the destination and returns, leaving the other
// direction running; on an error or the idle timeout it aborts both.
// When the other direction has already ended, the raw copy skips the
// half-close: every caller closes both connections as soon as the last
// direction ends, and that close sends the same FIN (both receive queues
// are empty then, so it is a FIN and not a reset), one shutdown(2) less
// per connection.
//
// A raw direction runs as rawCopier.run, which may park it and resume it
// later in another goroutine.
func (l *link) run(dir int) {
	if l.rawOK {
		l.raw[dir].run()
		return
	}
	defer l.finish()
	dst, src, count := l.b, l.a, &l.c.Sent
	if dir == 1 {
		dst, src, count = l.a, l.b, &l.c.Received
	}
	if l.copyBuffered(dst, src, count) == io.EOF {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return
		}
	}
	l.abort()
}

// copyBuffered is the read/write loop for connections that are not both
// plain TCP (TLS on either side). It returns io.EOF at the end of src.
func (l *link) copyBuffered(dst, src net.Conn, count *atomic.Int64) error {
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	for {
		n, err := src.Read(*buf)
		if n > 0 {
			w, werr := dst.Write((*buf)[:n])
			if w > 0 {
				count.Add(int64(w))
				l.touch()
			}
			if werr != nil {
				return werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return err
		}
	}
}

// bufPool holds the 32 KiB copy buffers of both loops. Of the sizes
// measured for the raw copy (16, 32, 64, 128, 256 KiB), 16 and 32 KiB
// cost the least per byte; 64 KiB cost the proxy 1.7x as much (likely
// because a 64 KiB write to loopback ends in a segment of a few bytes
// after one full 65,483-byte MSS).
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

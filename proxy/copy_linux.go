//go:build linux && !portable

package proxy

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/caddy-apisix/stream/rawsock"
)

// spliceChunk is the most the splice strategy moves in one splice call.
const spliceChunk = 1 << 20

// rawCopier moves one direction of a plain TCP connection with raw system
// calls inside the sockets' RawConn callbacks: a chunk costs two system
// calls and none of the net package's fd locking or poller bookkeeping,
// and the callbacks are bound once, so the copy loop allocates nothing per
// chunk. The chunk is staged in one of two ways (CopyMode):
//
//   - CopyBuffer: read(2) into a pooled 32 KiB buffer and write(2) from
//     it. Splicing keeps the sender's pages referenced until the receiver
//     has read them, so the load generator's socket writes land on cold
//     pages instead of reusing its hot page fragment: on the Intel host
//     the two copies of the load core took 1.7x the time per byte, and
//     copying through one hot buffer cost the proxy about what splicing
//     did and the rest of the host less (docs/performance.md, change 11).
//   - CopySplice: splice(2) from src into a pooled pipe and from the pipe
//     into dst, without copying the bytes through user space: on the AMD
//     EPYC of docs/performance-run-amd.md it cost the whole host 0.69x
//     what the buffer did per byte.
//
// CopyAuto measures both on the host and takes the cheaper
// (calibrate_linux.go).
type rawCopier struct {
	src, dst syscall.RawConn
	l        *link
	count    *atomic.Int64

	// srcConn and srcFD are the source, for the sweep's read deadline
	// and the parker's watch (park_linux.go; srcFD is the other
	// direction's dstFD); state is the direction's
	// parking state, parkID its id in the parker while parked, and seen
	// the count at the link's last check (under the link's mu).
	srcConn net.Conn
	srcFD   int
	state   atomic.Int32
	parkID  uint32
	seen    int64

	// dstFD is dst's descriptor, for delivering from inside src's read
	// callback and for the half-close. It stays valid while the copy
	// runs: the connections are closed only after both directions have
	// ended.
	dstFD int

	// splice selects the pipe over the buffer for the stage held (set
	// by take).
	splice bool
	// buf (CopyBuffer) or pipe (CopySplice) comes from its pool only
	// while bytes are in flight: an idle connection holds neither.
	// end-off bytes are still to be written: buf[off:end], or the pipe's
	// content. err is the read or write error that ended the copy, eof
	// whether src has ended.
	buf      *[]byte
	pipe     *rawsock.Pipe
	off, end int
	err      error
	eof      bool

	// stepFn is step bound once, the callback of both src's Read and
	// dst's Write.
	stepFn func(fd uintptr) bool
}

// closeWrite half-closes dst.
func (c *rawCopier) closeWrite() error { return rawsock.ShutdownWrite(uintptr(c.dstFD)) }

// rawSideOf is conn's RawConn, with its descriptor stored in *fd; ok is
// false when conn is not plain TCP (rawConnOf).
func rawSideOf(conn net.Conn, fd *int) (rc syscall.RawConn, ok bool) {
	rc, known, ok := rawConnOf(conn)
	if !ok {
		return nil, false
	}
	*fd = known
	if known < 0 && (rc.Control(func(u uintptr) { *fd = int(u) }) != nil || *fd < 0) {
		return nil, false
	}
	return rc, true
}

// initRaw prepares l's two raw copiers (client → upstream counting into
// up, upstream → client into down) and reports whether both sides are
// plain TCP. Each side's RawConn and descriptor are looked up once, for
// both directions.
func (l *link) initRaw(up, down *atomic.Int64) bool {
	toB, toA := &l.raw[0], &l.raw[1]
	rb, ok := rawSideOf(l.b, &toB.dstFD)
	if !ok {
		return false
	}
	ra, ok := rawSideOf(l.a, &toA.dstFD)
	if !ok {
		return false
	}
	// each direction's source is the other's destination
	toB.init(rb, ra, l.a, toA.dstFD, l, up)
	toA.init(ra, rb, l.b, toB.dstFD, l, down)
	return true
}

// init prepares c for src → dst with l's copy mode; c.dstFD is set, and
// srcConn is src's connection, whose descriptor is srcFD.
func (c *rawCopier) init(dst, src syscall.RawConn, srcConn net.Conn, srcFD int, l *link, count *atomic.Int64) {
	c.src, c.dst, c.l, c.count = src, dst, l, count
	c.srcConn, c.srcFD, c.seen = srcConn, srcFD, count.Load()
	c.stepFn = c.step
}

// newRawCopier returns a copier for src → dst with l's copy mode, or nil
// when either side is not plain TCP (rawConnOf).
func newRawCopier(dst, src net.Conn, l *link, count *atomic.Int64) *rawCopier {
	c := new(rawCopier)
	var srcFD int
	rs, ok1 := rawSideOf(src, &srcFD)
	rd, ok2 := rawSideOf(dst, &c.dstFD)
	if !ok1 || !ok2 {
		return nil
	}
	c.init(rd, rs, src, srcFD, l, count)
	return c
}

// step is the callback of src's Read and of dst's Write: with bytes
// still in the stage it is dst's (drain), else src's (fill). copy calls
// dst.Write only while bytes wait, and src.Read only once none do.
func (c *rawCopier) step(fd uintptr) bool {
	if c.off < c.end {
		return c.drain(fd)
	}
	return c.fill(fd)
}

// take gets the staging buffer or pipe from its pool. With none held,
// it first chooses which (copyStages.splice).
func (c *rawCopier) take() error {
	if c.buf == nil && c.pipe == nil {
		c.splice = c.l.stages.splice(c.l.mode)
	}
	switch {
	case c.splice && c.pipe == nil:
		p, err := c.l.stages.pipes.Get()
		if err != nil {
			return err
		}
		c.pipe = p
	case !c.splice && c.buf == nil:
		c.buf = bufPool.Get().(*[]byte)
	}
	return nil
}

// in moves what fd has into the empty stage.
func (c *rawCopier) in(fd int) (int, error) {
	if c.splice {
		return rawsock.Splice(fd, c.pipe.W, spliceChunk)
	}
	return rawsock.Read(fd, *c.buf)
}

// out moves the stage's pending bytes on to fd.
func (c *rawCopier) out(fd int) (int, error) {
	if c.splice {
		return rawsock.Splice(c.pipe.R, fd, c.end-c.off)
	}
	return rawsock.Write(fd, (*c.buf)[c.off:c.end])
}

// syscallError names err after the call that failed.
func (c *rawCopier) syscallError(call string, err error) error {
	if c.splice {
		call = "splice"
	}
	return os.NewSyscallError(call, err)
}

// fill runs as src's read callback. It reads what src has and writes it
// on to dst, without leaving the callback while dst takes everything at
// once. It returns false to wait when src has nothing, and true at EOF,
// on an error, or when dst is full (bytes left in the stage).
func (c *rawCopier) fill(fd uintptr) bool {
	for {
		if err := c.take(); err != nil {
			c.err = err
			return true
		}
		n, err := c.in(int(fd))
		switch err {
		case nil:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			// nothing in flight: give the stage back while we wait
			c.putStage()
			return false
		default:
			c.err = c.syscallError("read", err)
			return true
		}
		if n == 0 {
			c.eof = true
			return true
		}
		c.off, c.end = 0, n
		c.l.touch()
		if !c.push(c.dstFD) || c.err != nil {
			return true // dst is full: wait for it outside
		}
		// loop: the next read finds more bytes, EOF or EAGAIN. Even
		// after a short read it cannot be skipped: the poller is edge
		// triggered, and a FIN that came with the bytes is seen only by
		// a read that returns 0.
	}
}

// drain runs as dst's write callback when dst was full: it writes the
// rest of the stage, or returns false to wait again.
func (c *rawCopier) drain(fd uintptr) bool {
	return c.push(int(fd)) || c.err != nil
}

// push writes the stage's pending bytes to fd. It reports whether all
// went; false with c.err nil means fd cannot take more now.
func (c *rawCopier) push(fd int) bool {
	for c.off < c.end {
		m, err := c.out(fd)
		switch err {
		case nil:
			c.off += m
			c.count.Add(int64(m))
			c.l.touch()
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.err = c.syscallError("write", err)
			return false
		}
	}
	return true
}

// putStage gives the empty buffer or pipe back to its pool.
func (c *rawCopier) putStage() {
	if c.buf != nil {
		bufPool.Put(c.buf)
		c.buf = nil
	}
	if c.pipe != nil {
		c.l.stages.pipes.Put(c.pipe)
		c.pipe = nil
	}
}

// copy moves bytes until EOF (io.EOF) or an error. The idle timeout
// arrives as a deadline error from link.abort, and so does the sweep's
// request to park (run tells them apart).
func (c *rawCopier) copy() error {
	defer c.release()
	for {
		if err := c.src.Read(c.stepFn); err != nil {
			return err
		}
		if c.err != nil {
			return c.err
		}
		if c.eof {
			return io.EOF
		}
		if c.off < c.end {
			if err := c.dst.Write(c.stepFn); err != nil {
				return err
			}
			if c.err != nil {
				return c.err
			}
		}
	}
}

// release returns the stage; a pipe with bytes stuck in it is closed
// instead, as a buffer can be reused whatever it holds.
func (c *rawCopier) release() {
	if c.pipe != nil && c.off < c.end {
		c.pipe.Close()
		c.pipe = nil
	}
	c.putStage()
}

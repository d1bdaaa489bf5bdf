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

// rawCopier moves one direction of a plain TCP connection with raw
// read(2) and write(2) calls inside the sockets' RawConn callbacks: a
// chunk costs two system calls and none of the net package's fd locking
// or poller bookkeeping, and the callbacks are bound once, so the copy
// loop allocates nothing per chunk.
//
// It replaces splice(2) (docs/performance.md, change 11): splicing keeps
// the sender's pages referenced until the receiver has read them, so the
// load generator's socket writes land on cold pages instead of reusing
// its hot page fragment, and on the Intel host the two copies of the load
// core took 1.7x the time per byte; copying through one hot 32 KiB buffer
// costs the proxy about what splicing did and the rest of the host less.
type rawCopier struct {
	src, dst syscall.RawConn
	l        *link
	count    *atomic.Int64

	// dstFD is dst's descriptor, for delivering from inside src's read
	// callback. It stays valid while the copy runs: the connections are
	// closed only after both directions have ended.
	dstFD int

	// buf comes from bufPool only while bytes are in flight: an idle
	// connection holds no buffer. buf[off:end] is still to be written;
	// err is the read or write error that ended the copy, eof whether
	// src has ended.
	buf      *[]byte
	off, end int
	err      error
	eof      bool

	readFn, writeFn func(fd uintptr) bool
}

// closeWrite half-closes dst.
func (c *rawCopier) closeWrite() error {
	var serr error
	err := c.dst.Control(func(fd uintptr) { serr = rawsock.ShutdownWrite(fd) })
	if err != nil {
		return err
	}
	return serr
}

// newRawCopier returns a copier for src → dst, or nil when either side
// is not plain TCP (rawConnOf).
func newRawCopier(dst, src net.Conn, l *link, count *atomic.Int64) *rawCopier {
	rs, ok1 := rawConnOf(src)
	rd, ok2 := rawConnOf(dst)
	if !ok1 || !ok2 {
		return nil
	}
	c := &rawCopier{src: rs, dst: rd, l: l, count: count, dstFD: -1}
	if rd.Control(func(fd uintptr) { c.dstFD = int(fd) }) != nil || c.dstFD < 0 {
		return nil
	}
	c.readFn, c.writeFn = c.fill, c.drain
	return c
}

// fill runs as src's read callback. It reads what src has and writes it
// on to dst, without leaving the callback while dst takes everything at
// once. It returns false to wait when src has nothing, and true at EOF,
// on an error, or when dst is full (bytes left in the buffer).
func (c *rawCopier) fill(fd uintptr) bool {
	for {
		if c.buf == nil {
			c.buf = bufPool.Get().(*[]byte)
		}
		n, err := rawsock.Read(int(fd), *c.buf)
		switch err {
		case nil:
		case syscall.EAGAIN:
			// nothing in flight: give the buffer back while we wait
			c.putBuf()
			return false
		default:
			c.err = os.NewSyscallError("read", err)
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
// rest of the buffer, or returns false to wait again.
func (c *rawCopier) drain(fd uintptr) bool {
	return c.push(int(fd)) || c.err != nil
}

// push writes the buffer's pending bytes to fd. It reports whether all
// went; false with c.err nil means fd cannot take more now.
func (c *rawCopier) push(fd int) bool {
	for c.off < c.end {
		m, err := rawsock.Write(fd, (*c.buf)[c.off:c.end])
		switch err {
		case nil:
			c.off += m
			c.count.Add(int64(m))
			c.l.touch()
		case syscall.EAGAIN:
			return false
		default:
			c.err = os.NewSyscallError("write", err)
			return false
		}
	}
	return true
}

func (c *rawCopier) putBuf() {
	bufPool.Put(c.buf)
	c.buf = nil
}

// copy moves bytes until EOF (io.EOF) or an error. The idle timeout
// arrives as a deadline error from link.abort.
func (c *rawCopier) copy() error {
	defer c.release()
	for {
		if err := c.src.Read(c.readFn); err != nil {
			return err
		}
		if c.err != nil {
			return c.err
		}
		if c.eof {
			return io.EOF
		}
		if c.off < c.end {
			if err := c.dst.Write(c.writeFn); err != nil {
				return err
			}
			if c.err != nil {
				return c.err
			}
		}
	}
}

// release returns the buffer.
func (c *rawCopier) release() {
	if c.buf != nil {
		c.putBuf()
	}
}

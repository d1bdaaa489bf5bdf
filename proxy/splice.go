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

// spliceChunk is the most we move in one splice call.
const spliceChunk = 1 << 20

// splicer moves one direction of a TCP connection with splice(2). Its
// callbacks are bound once, so the copy loop allocates nothing per chunk.
type splicer struct {
	src, dst syscall.RawConn
	l        *link
	count    *atomic.Int64

	// dstFD is dst's descriptor, for delivering from inside src's read
	// callback. It stays valid while the copy runs: the connections are
	// closed only after both directions have ended.
	dstFD int

	p *rawsock.Pipe
	// n is the number of bytes in the pipe, err the last splice error,
	// eof whether src has ended.
	n   int
	err error
	eof bool

	readFn, writeFn func(fd uintptr) bool
}

// closeWrite half-closes dst.
func (s *splicer) closeWrite() error {
	var serr error
	err := s.dst.Control(func(fd uintptr) { serr = rawsock.ShutdownWrite(fd) })
	if err != nil {
		return err
	}
	return serr
}

// newSplicer returns a splicer for src → dst, or nil when either side is
// not a plain *net.TCPConn.
func newSplicer(dst, src net.Conn, l *link, count *atomic.Int64) *splicer {
	ts, ok1 := src.(*net.TCPConn)
	td, ok2 := dst.(*net.TCPConn)
	if !ok1 || !ok2 {
		return nil
	}
	rs, err1 := ts.SyscallConn()
	rd, err2 := td.SyscallConn()
	if err1 != nil || err2 != nil {
		return nil
	}
	s := &splicer{src: rs, dst: rd, l: l, count: count, dstFD: -1}
	if rd.Control(func(fd uintptr) { s.dstFD = int(fd) }) != nil || s.dstFD < 0 {
		return nil
	}
	s.readFn, s.writeFn = s.fill, s.drain
	return s
}

// fill runs as src's read callback. It splices what src has into the
// pipe and on into dst, without leaving the callback (and its fd locking
// and poller bookkeeping) while dst takes everything at once. It returns
// false to wait when src has nothing, and true at EOF, on an error, or
// when dst is full (s.n > 0).
func (s *splicer) fill(fd uintptr) bool {
	for {
		if s.p == nil {
			s.p, s.err = rawsock.GetPipe()
			if s.err != nil {
				return true
			}
		}
		n, err := rawsock.Splice(int(fd), s.p.W, spliceChunk)
		switch err {
		case nil:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			// nothing in flight: give the pipe back while we wait
			s.putPipe()
			return false
		default:
			s.err = err
			return true
		}
		if n == 0 {
			s.eof = true
			return true
		}
		s.n = n
		s.l.touch()
		if !s.push(s.dstFD) || s.err != nil {
			return true // dst is full: wait for it outside
		}
		// loop: the next splice finds more bytes, EOF or EAGAIN. Even
		// after a short splice it cannot be skipped: a FIN that came
		// with the bytes is seen only by a splice that returns 0.
	}
}

// drain runs as dst's write callback when dst was full: it delivers the
// rest of the pipe, or returns false to wait again.
func (s *splicer) drain(fd uintptr) bool {
	return s.push(int(fd)) || s.err != nil
}

// push splices the pipe's bytes into fd. It reports whether the pipe is
// empty; false with s.err nil means fd cannot take more now.
func (s *splicer) push(fd int) bool {
	for s.n > 0 {
		m, err := rawsock.Splice(s.p.R, fd, s.n)
		switch err {
		case nil:
			s.n -= m
			s.count.Add(int64(m))
			s.l.touch()
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.err = err
			return false
		}
	}
	return true
}

func (s *splicer) putPipe() {
	rawsock.PutPipe(s.p)
	s.p = nil
}

// copy moves bytes until EOF (io.EOF) or an error. The idle timeout
// arrives as a deadline error from link.abort.
func (s *splicer) copy() error {
	defer s.release()
	for {
		if err := s.src.Read(s.readFn); err != nil {
			return err
		}
		if s.err != nil {
			return os.NewSyscallError("splice", s.err)
		}
		if s.eof {
			return io.EOF
		}
		if s.n > 0 {
			if err := s.dst.Write(s.writeFn); err != nil {
				return err
			}
			if s.err != nil {
				return os.NewSyscallError("splice", s.err)
			}
		}
	}
}

// release returns the pipe, or closes it when bytes are stuck in it.
func (s *splicer) release() {
	if s.p == nil {
		return
	}
	if s.n > 0 {
		s.p.Close()
	} else {
		rawsock.PutPipe(s.p)
	}
	s.p = nil
}

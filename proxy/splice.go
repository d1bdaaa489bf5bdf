//go:build linux

package proxy

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// A pipe carries spliced bytes between two sockets. Unlike the standard
// library's splice, which holds a pipe (two fds) per direction for as long
// as the copy waits for data, a pipe is taken from the pool only when bytes
// are ready and given back when the source runs dry, so an idle connection
// costs its two sockets and nothing more.
type pipe struct {
	r, w int
}

// pipeSize is what we ask the kernel for; larger pipes mean fewer
// splice calls per megabyte. The kernel may refuse, which is fine.
const pipeSize = 256 << 10

// maxFreePipes bounds the pipes kept for reuse. Unlike a sync.Pool, the
// free list survives garbage collections, so a busy proxy does not keep
// creating and closing pipes.
const maxFreePipes = 64

var pipes struct {
	mu   sync.Mutex
	free []*pipe
}

func getPipe() (*pipe, error) {
	pipes.mu.Lock()
	if n := len(pipes.free); n > 0 {
		p := pipes.free[n-1]
		pipes.free = pipes.free[:n-1]
		pipes.mu.Unlock()
		return p, nil
	}
	pipes.mu.Unlock()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	_, _ = unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, pipeSize)
	return &pipe{r: fds[0], w: fds[1]}, nil
}

// putPipe keeps an empty pipe for reuse, or closes it.
func putPipe(p *pipe) {
	pipes.mu.Lock()
	if len(pipes.free) < maxFreePipes {
		pipes.free = append(pipes.free, p)
		pipes.mu.Unlock()
		return
	}
	pipes.mu.Unlock()
	p.close()
}

func (p *pipe) close() {
	_ = unix.Close(p.r)
	_ = unix.Close(p.w)
}

// spliceChunk is the most we move in one splice call.
const spliceChunk = 1 << 20

// rawSplice is a non-blocking splice(2) without offsets. It is a raw
// system call: it never blocks, so the runtime need not prepare for a
// blocking call. With the ordinary path, every slow splice on a busy
// proxy lets the scheduler's monitor hand the P to another thread, and the
// thread switches that follow cost more than the copy.
func rawSplice(in, out, n int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// rawShutdownWrite half-closes a socket (see rawSplice for why raw).
func rawShutdownWrite(fd uintptr) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SHUTDOWN, fd, unix.SHUT_WR, 0); e != 0 {
		return os.NewSyscallError("shutdown", e)
	}
	return nil
}

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

	p *pipe
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
	err := s.dst.Control(func(fd uintptr) { serr = rawShutdownWrite(fd) })
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
			s.p, s.err = getPipe()
			if s.err != nil {
				return true
			}
		}
		n, err := rawSplice(int(fd), s.p.w, spliceChunk)
		switch err {
		case nil:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
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
		m, err := rawSplice(s.p.r, fd, s.n)
		switch err {
		case nil:
			s.n -= m
			s.count.Add(int64(m))
			s.l.touch()
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			s.err = err
			return false
		}
	}
	return true
}

func (s *splicer) putPipe() {
	putPipe(s.p)
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
		s.p.close()
	} else {
		putPipe(s.p)
	}
	s.p = nil
}

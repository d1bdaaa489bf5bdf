//go:build linux

package proxy

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// A pipe carries spliced bytes between two sockets. Unlike the standard
// library's splice, which holds a pipe (two fds) per direction for as long
// as the copy waits for data, a pipe is taken from the pool only when bytes
// are ready and given back as soon as they are delivered, so an idle
// connection costs its two sockets and nothing more.
type pipe struct {
	r, w int
}

// pipeSize is what we ask the kernel for; larger pipes mean fewer
// splice calls per megabyte. The kernel may refuse, which is fine.
const pipeSize = 256 << 10

var pipePool = sync.Pool{New: func() any {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil
	}
	_, _ = unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, pipeSize)
	p := &pipe{r: fds[0], w: fds[1]}
	runtime.SetFinalizer(p, func(p *pipe) {
		unix.Close(p.r)
		unix.Close(p.w)
	})
	return p
}}

func getPipe() (*pipe, error) {
	p, _ := pipePool.Get().(*pipe)
	if p == nil {
		return nil, errors.New("splice: cannot create pipe")
	}
	return p, nil
}

// spliceChunk is the most we move in one splice call.
const spliceChunk = 1 << 20

// spliceOnce waits until src has bytes (or EOF), then moves one chunk of
// them to dst through a pooled pipe. It returns 0, nil at EOF. Deadlines
// set on src and dst apply to the waits.
func spliceOnce(dst, src syscall.RawConn) (int64, error) {
	var (
		p     *pipe
		n     int64
		serr  error
		perr  error
		moved int64
	)
	err := src.Read(func(fd uintptr) bool {
		if p == nil {
			p, perr = getPipe()
			if perr != nil {
				return true
			}
		}
		n, serr = unix.Splice(int(fd), nil, p.w, nil, spliceChunk, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		if serr == unix.EINTR {
			return false
		}
		if serr == unix.EAGAIN {
			// nothing in flight: give the pipe back while we wait
			pipePool.Put(p)
			p = nil
			return false
		}
		return true
	})
	if perr != nil {
		return 0, perr
	}
	if err == nil && serr != nil {
		err = os.NewSyscallError("splice", serr)
	}
	if err != nil || n <= 0 {
		if p != nil {
			pipePool.Put(p)
		}
		return 0, err
	}
	remaining := int(n)
	werr := dst.Write(func(fd uintptr) bool {
		for remaining > 0 {
			m, e := unix.Splice(p.r, nil, int(fd), nil, remaining, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
			if e == unix.EINTR {
				continue
			}
			if e == unix.EAGAIN {
				return false
			}
			if e != nil {
				serr = e
				return true
			}
			remaining -= int(m)
			moved += m
		}
		return true
	})
	if werr == nil && serr != nil {
		werr = os.NewSyscallError("splice", serr)
	}
	if remaining == 0 {
		pipePool.Put(p)
	} else {
		// bytes stuck in the pipe: it cannot be reused
		runtime.SetFinalizer(p, nil)
		unix.Close(p.r)
		unix.Close(p.w)
	}
	return moved, werr
}

// rawConns returns the syscall.RawConns of two TCP sockets, or ok=false
// when either side is not a plain *net.TCPConn.
func rawConns(a, b net.Conn) (ra, rb syscall.RawConn, ok bool) {
	ta, ok1 := a.(*net.TCPConn)
	tb, ok2 := b.(*net.TCPConn)
	if !ok1 || !ok2 {
		return nil, nil, false
	}
	ra, err1 := ta.SyscallConn()
	rb, err2 := tb.SyscallConn()
	return ra, rb, err1 == nil && err2 == nil
}

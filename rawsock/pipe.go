//go:build linux && !portable

package rawsock

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// A Pipe carries spliced bytes between two sockets, for the TCP copy's
// splice strategy (proxy/copy_linux.go). Unlike the standard
// library's splice, which holds a pipe (two fds) per direction for as long
// as the copy waits for data, a pipe is taken from the pool only when bytes
// are ready and given back when the source runs dry, so an idle connection
// costs its two sockets and nothing more.
type Pipe struct {
	R, W int
}

// pipeSize is what we ask the kernel for; larger pipes mean fewer
// splice calls per megabyte. The kernel may refuse, which is fine.
const pipeSize = 256 << 10

// maxFreePipes bounds the pipes kept for reuse. Unlike a sync.Pool, the
// free list survives garbage collections, so a busy proxy does not keep
// creating and closing pipes.
const maxFreePipes = 64

// PipePool keeps empty pipes for reuse; the zero value is an empty pool.
// It cannot be a sync.Pool: a pipe the garbage collector drops leaks its
// two descriptors. The process's one pool is the data-path runtime's
// (proxy.Runtime, owned by package live).
type PipePool struct {
	mu   sync.Mutex
	free []*Pipe
}

// Get takes an empty pipe from the pool or makes one.
func (pipes *PipePool) Get() (*Pipe, error) {
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
	return &Pipe{R: fds[0], W: fds[1]}, nil
}

// Put keeps an empty pipe for reuse, or closes it.
func (pipes *PipePool) Put(p *Pipe) {
	pipes.mu.Lock()
	if len(pipes.free) < maxFreePipes {
		pipes.free = append(pipes.free, p)
		pipes.mu.Unlock()
		return
	}
	pipes.mu.Unlock()
	p.Close()
}

// Drain closes the pipes kept for reuse (a pool used once, as tcp_copy
// auto's calibration does).
func (pipes *PipePool) Drain() {
	pipes.mu.Lock()
	free := pipes.free
	pipes.free = nil
	pipes.mu.Unlock()
	for _, p := range free {
		p.Close()
	}
}

// Close closes both ends (a pipe with bytes stuck in it).
func (p *Pipe) Close() {
	_ = unix.Close(p.R)
	_ = unix.Close(p.W)
}

// Splice is a non-blocking splice(2) of up to n bytes from in to out,
// without offsets.
func Splice(in, out, n int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

//go:build linux && !portable

package rawsock

import (
	"sync"

	"golang.org/x/sys/unix"
)

// FDReserve is the size the process's descriptor table is grown to before
// the first connection or UDP session. Linux grows the table by doubling
// when a new descriptor does not fit, and in a process with more than one
// thread (any Go program) each growth waits for an RCU grace period
// (synchronize_rcu in expand_fdtable): socket(2) or accept(2) returning
// descriptor 256, 512, 1024, ... took 10-20 ms each on the benchmark host,
// stalling every client of the goroutine that made the call. 64 Ki slots
// cost 512 KiB of kernel memory, once.
const FDReserve = 1 << 16

var reserveOnce sync.Once

// ReserveFDs raises RLIMIT_NOFILE (RaiseNofile) and grows the descriptor
// table to FDReserve slots (fewer when the soft limit is lower), once per
// process. F_DUPFD copies a descriptor to the lowest free one at or above
// its argument, growing the table to hold it, and never touches
// descriptors in use; the copy is closed at once, and the table does not
// shrink.
func ReserveFDs() {
	reserveOnce.Do(func() {
		RaiseNofile()
		var lim unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) != nil {
			return
		}
		top := uint64(FDReserve - 1)
		if lim.Cur <= top {
			top = lim.Cur - 1
		}
		if lim.Cur == 0 || top < 256 {
			return // the table starts small anyway: nothing worth reserving
		}
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		if nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, int(top)); err == nil {
			_ = unix.Close(nfd)
		}
	})
}

var (
	raiseOnce sync.Once
	nofile    int64
)

// RaiseNofile raises the soft RLIMIT_NOFILE to the hard limit, once per
// process, and returns the soft limit then in force. Go's runtime does the
// same at start (syscall.init, rlimit.go), but a parent that lowered the
// soft limit after exec, or a Go build without it, would leave a proxy
// that serves one descriptor per UDP session at 1024.
func RaiseNofile() int64 {
	raiseOnce.Do(func() {
		var lim unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) != nil {
			return
		}
		if lim.Cur < lim.Max {
			want := lim
			want.Cur = lim.Max
			if unix.Setrlimit(unix.RLIMIT_NOFILE, &want) == nil {
				lim = want
			}
		}
		nofile = int64(min(lim.Cur, 1<<40))
	})
	return nofile
}

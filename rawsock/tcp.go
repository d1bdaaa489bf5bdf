//go:build linux && !portable

package rawsock

import (
	"os"

	"golang.org/x/sys/unix"
)

// ShutdownWrite half-closes a socket.
func ShutdownWrite(fd uintptr) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SHUTDOWN, fd, unix.SHUT_WR, 0); e != 0 {
		return os.NewSyscallError("shutdown", e)
	}
	return nil
}

//go:build unix

package stream

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort lets a reloaded config bind the same addresses while the old
// one still holds them, as Caddy's own listeners do.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	return errors.Join(err, serr)
}

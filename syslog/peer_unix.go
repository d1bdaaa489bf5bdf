//go:build unix

package syslog

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerClosed reports whether the server closed or reset a kept TCP
// connection, which the next write would not tell before losing its
// data. A syslog server never writes, so a peek that finds end of stream
// or an error means the connection is gone; "nothing to read" means it
// is alive.
func peerClosed(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	err = rc.Read(func(fd uintptr) bool {
		var one [1]byte
		n, _, rerr := unix.Recvfrom(int(fd), one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		closed = n == 0 && rerr == nil || rerr != nil && !errors.Is(rerr, unix.EAGAIN)
		return true // never wait for readability
	})
	return closed || err != nil
}
